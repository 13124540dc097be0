"""One key over HTTP: create, read, HEAD, delete, touch, and every status they answer."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest


def url_of(key: str) -> str:
    """The key's route, every character but letters and digits percent-encoded ("." too, so
    that a key "." or ".." is never taken for a path segment by the client)."""
    return "/v1/keys/" + quote(key, safe="").replace(".", "%2E")


def assert_error(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == name
    assert body["message"]
    assert "Traceback" not in response.text


class TestCreateRead:
    def test_create_then_read(self, client: httpx.Client) -> None:
        response = client.put(url_of("cr:1"), json={"name": "Ada", "n": [1, 2.5, None]})
        assert response.status_code == 201
        read = client.get(url_of("cr:1"))
        assert read.status_code == 200
        assert read.json() == {"name": "Ada", "n": [1, 2.5, None]}

    def test_a_live_key_is_409_and_keeps_its_value(self, client: httpx.Client) -> None:
        client.put(url_of("cr:2"), json={"v": 1})
        assert_error(client.put(url_of("cr:2"), json={"v": 2}), 409, "KeyExistsError")
        assert client.get(url_of("cr:2")).json() == {"v": 1}

    def test_a_missing_key_is_404(self, client: httpx.Client) -> None:
        assert_error(client.get(url_of("cr:absent")), 404, "KeyNotFoundError")

    def test_integers_beyond_64_bits_round_trip_exactly(self, client: httpx.Client) -> None:
        big = 2**100 + 1
        body = f'{{"big": {big}}}'.encode()
        assert client.put(url_of("cr:big"), content=body).status_code == 201
        assert json.loads(client.get(url_of("cr:big")).content) == {"big": big}

    @pytest.mark.parametrize(
        "body",
        [
            b"[1, 2]",
            b'"text"',
            b"3",
            b"null",
            b"{",
            b"",
            b'{"x": NaN}',
            b"\xff\xfe",
            b"[" * 100_000,
        ],
    )
    def test_a_body_that_is_not_a_json_object_is_400(
        self, client: httpx.Client, body: bytes
    ) -> None:
        assert_error(client.put(url_of("cr:bad"), content=body), 400, "InvalidValueError")

    def test_a_value_over_16_kib_is_413(self, client: httpx.Client) -> None:
        value = {"s": "x" * 16_400}
        assert_error(client.put(url_of("cr:large"), json=value), 413, "ValueTooLargeError")
        assert client.get(url_of("cr:large")).status_code == 404


class TestTTL:
    def test_a_ttl_is_kept(self, client: httpx.Client) -> None:
        assert client.put(url_of("ttl:1"), params={"ttl": "60"}, json={}).status_code == 201
        assert client.get(url_of("ttl:1")).json() == {}

    @pytest.mark.parametrize("ttl", ["0", "-1", "1.5", "x", " 5", "+5", "2147483648", "9" * 30])
    def test_a_bad_ttl_is_400(self, client: httpx.Client, ttl: str) -> None:
        response = client.put(url_of("ttl:bad"), params={"ttl": ttl}, json={})
        assert_error(response, 400, "InvalidTTLError")

    def test_touch_sets_and_clears_the_deadline(self, client: httpx.Client) -> None:
        client.put(url_of("ttl:touch"), json={"a": 1})
        assert client.post(url_of("ttl:touch") + "/touch", params={"ttl": "30"}).status_code == 204
        assert client.post(url_of("ttl:touch") + "/touch?ttl=").status_code == 204
        assert client.get(url_of("ttl:touch")).json() == {"a": 1}

    def test_touch_without_a_ttl_is_400(self, client: httpx.Client) -> None:
        client.put(url_of("ttl:touch2"), json={})
        assert_error(client.post(url_of("ttl:touch2") + "/touch"), 400, "InvalidTTLError")

    def test_touch_of_a_missing_key_is_404(self, client: httpx.Client) -> None:
        response = client.post(url_of("ttl:nobody") + "/touch", params={"ttl": "5"})
        assert_error(response, 404, "KeyNotFoundError")


class TestDeleteAndHead:
    def test_delete_is_204_then_404(self, client: httpx.Client) -> None:
        client.put(url_of("del:1"), json={})
        assert client.delete(url_of("del:1")).status_code == 204
        assert_error(client.delete(url_of("del:1")), 404, "KeyNotFoundError")
        assert client.get(url_of("del:1")).status_code == 404

    def test_head_has_the_headers_of_get_and_no_body(self, client: httpx.Client) -> None:
        client.put(url_of("head:1"), json={"x": "y"})
        got = client.get(url_of("head:1"))
        head = client.head(url_of("head:1"))
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["content-type"] == "application/json"

    def test_head_of_a_missing_key_is_404_without_a_body(self, client: httpx.Client) -> None:
        head = client.head(url_of("head:absent"))
        assert head.status_code == 404
        assert head.content == b""

    def test_another_method_is_405(self, client: httpx.Client) -> None:
        assert_error(client.patch(url_of("x"), json={}), 405, "MethodNotAllowed")


KEYS = [
    "a/b",
    "/leading",
    "trailing/",
    "a//b",
    ".",
    "..",
    "../../etc",
    "%",
    "%2F",
    "100%25",
    "a b",
    "🙂 emoji ✓",
    "a/touch",
    "touch",
    "q?x=1#frag",
    "new\nline",
    "nul\x00",
    "back\\slash",
    "+plus&amp;=",
    "x" * 32,
]


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_reachable(client: httpx.Client, key: str) -> None:
    value = {"key": key}
    assert client.put(url_of(key), json=value).status_code == 201
    assert client.get(url_of(key)).json() == value
    assert client.head(url_of(key)).status_code == 200
    assert client.post(url_of(key) + "/touch", params={"ttl": "100"}).status_code == 204
    listed = client.get("/v1/keys", params={"prefix": key, "limit": 10}).json()["keys"]
    assert key in listed
    assert client.delete(url_of(key)).status_code == 204
    assert client.get(url_of(key)).status_code == 404


def test_a_key_and_its_touch_route_are_told_apart(client: httpx.Client) -> None:
    """The key "k/touch" is not the touch of "k", and a key named "touch" is a key."""
    client.put(url_of("k"), json={"who": "k"})
    client.put(url_of("k/touch"), json={"who": "k/touch"})
    assert client.get(url_of("k/touch")).json() == {"who": "k/touch"}
    assert client.post(url_of("k/touch") + "/touch", params={"ttl": "9"}).status_code == 204
    assert client.get(url_of("k")).json() == {"who": "k"}


def test_an_unencoded_slash_is_no_route(client: httpx.Client) -> None:
    response = client.put("/v1/keys/raw/slash", json={})
    assert_error(response, 404, "NotFound")
    assert "%2F" in response.json()["message"]
    assert client.get(url_of("raw/slash")).status_code == 404


def test_touch_takes_post_only(client: httpx.Client) -> None:
    response = client.get(url_of("any") + "/touch")
    assert_error(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == "POST"
    assert client.post(url_of("any")).headers["allow"] == "GET, HEAD, PUT, DELETE"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/keys/",  # the empty key
        "/v1/keys/" + "x" * 33,
        "/v1/keys/%FF",  # not UTF-8
        "/v1/keys/%ED%A0%80",  # a lone surrogate's UTF-8
    ],
)
def test_a_key_the_library_refuses_is_400(client: httpx.Client, path: str) -> None:
    for response in (client.get(path), client.put(path, json={}), client.delete(path)):
        assert_error(response, 400, "InvalidKeyError")
    assert_error(client.post(path + "/touch?ttl=1"), 400, "InvalidKeyError")
