"""``/v1/batch/*``: many keys in one request, all or none."""

from __future__ import annotations

import httpx
import pytest


def test_create_read_delete(client: httpx.Client) -> None:
    items = {f"b:{i}": {"i": i} for i in range(20)}
    created = client.post("/v1/batch/create", json={"items": items, "ttl": 3600})
    assert created.status_code == 201
    assert created.json() == {"created": 20}
    read = client.post("/v1/batch/read", json={"keys": [*items, "b:absent"]})
    assert read.status_code == 200
    assert read.json() == {"values": items}
    deleted = client.post("/v1/batch/delete", json={"keys": [*items, "b:absent"]})
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": 20}


def test_create_names_the_live_keys_and_writes_nothing(client: httpx.Client) -> None:
    client.put("/v1/keys/bx:live", json={})
    response = client.post(
        "/v1/batch/create", json={"items": {"bx:new": {}, "bx:live": {}}, "ttl": None}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "KeyExistsError"
    assert "bx:live" in response.json()["message"]
    assert client.get("/v1/keys/bx:new").status_code == 404


@pytest.mark.parametrize(
    ("route", "body", "error"),
    [
        ("read", {"keys": "abc"}, "BadRequest"),
        ("read", {"keys": [1]}, "InvalidKeyError"),
        ("read", {"keys": ["x" * 33]}, "InvalidKeyError"),
        ("read", {"key": ["a"]}, "BadRequest"),
        ("read", ["a"], "BadRequest"),
        ("delete", {"keys": ["a"], "extra": 1}, "BadRequest"),
        ("delete", {"keys": [None]}, "InvalidKeyError"),
        ("create", {"items": []}, "BadRequest"),
        ("create", {"items": {"bb:1": [1]}}, "InvalidValueError"),
        ("create", {"items": {"bb:1": {}}, "ttl": 0}, "InvalidTTLError"),
        ("create", {"items": {"bb:1": {}}, "ttl": "5"}, "InvalidTTLError"),
        ("create", {"items": {"bb:1": {}}, "ttl": True}, "InvalidTTLError"),
        ("create", {"items": {"": {}}}, "InvalidKeyError"),
    ],
)
def test_a_bad_batch_is_400(client: httpx.Client, route: str, body: object, error: str) -> None:
    response = client.post(f"/v1/batch/{route}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


def test_a_batch_value_over_16_kib_is_413(client: httpx.Client) -> None:
    response = client.post("/v1/batch/create", json={"items": {"bl:1": {"s": "x" * 16_400}}})
    assert response.status_code == 413
    assert response.json()["error"] == "ValueTooLargeError"


def test_a_batch_body_may_be_larger_than_a_one_key_body(client: httpx.Client) -> None:
    items = {f"bl:{i}": {"s": "x" * 15_000} for i in range(100)}  # about 1.5 MiB
    assert client.post("/v1/batch/create", json={"items": items}).status_code == 201
    assert client.post("/v1/batch/delete", json={"keys": list(items)}).json() == {"deleted": 100}
