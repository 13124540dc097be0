"""``GET /v1/keys``: pages of sorted keys after a cursor, and the paging guarantee."""

from __future__ import annotations

import httpx
import pytest


def create(client: httpx.Client, keys: list[str]) -> None:
    response = client.post("/v1/batch/create", json={"items": {key: {} for key in keys}})
    assert response.status_code == 201, response.text


def all_pages(client: httpx.Client, prefix: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    for _ in range(1000):
        params: dict[str, str | int] = {"prefix": prefix, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/keys", params=params).json()
        pages.append(page["keys"])
        cursor = page["next"]
        if cursor is None:
            return pages
    raise AssertionError("the paging never ended")


def test_pages_are_sorted_and_cover_every_key_once(client: httpx.Client) -> None:
    keys = [f"pg:{i:03}" for i in range(95)]
    create(client, keys)
    pages = all_pages(client, "pg:", 10)
    assert [len(page) for page in pages] == [10] * 9 + [5]
    assert [key for page in pages for key in page] == sorted(keys)


def test_an_exact_last_page_has_no_next(client: httpx.Client) -> None:
    create(client, [f"ex:{i}" for i in range(4)])
    page = client.get("/v1/keys", params={"prefix": "ex:", "limit": 4}).json()
    assert page == {"keys": ["ex:0", "ex:1", "ex:2", "ex:3"], "next": None}


def test_no_match_is_an_empty_page(client: httpx.Client) -> None:
    assert client.get("/v1/keys", params={"prefix": "none:"}).json() == {"keys": [], "next": None}


def test_keys_live_throughout_appear_exactly_once(client: httpx.Client) -> None:
    """Keys created and deleted between the pages do not make a steady key vanish or repeat."""
    steady = [f"gt:{i:03}" for i in range(0, 300, 2)]
    churn = [f"gt:{i:03}" for i in range(1, 300, 2)]
    create(client, steady + churn)
    seen: list[str] = []
    cursor = None
    for round_ in range(1000):
        params: dict[str, str | int] = {"prefix": "gt:", "limit": 7}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/keys", params=params).json()
        seen += page["keys"]
        # Between pages: delete churn keys ahead of and behind the cursor, create new ones.
        gone = churn[round_ * 3 : round_ * 3 + 3]
        if gone:
            client.post("/v1/batch/delete", json={"keys": gone})
        create(client, [f"gt:{round_:03}+", f"gt:{299 - round_:03}+"])
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a key appeared twice"
    assert set(steady) <= set(seen)
    assert seen == sorted(seen)


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "x", "1.5"])
def test_a_bad_limit_is_400(client: httpx.Client, limit: str) -> None:
    response = client.get("/v1/keys", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"


@pytest.mark.parametrize("cursor", ["@@@", "a", "_w"])  # not base64; not UTF-8
def test_a_bad_cursor_is_400(client: httpx.Client, cursor: str) -> None:
    response = client.get("/v1/keys", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"


def test_a_prefix_longer_than_a_key_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/keys", params={"prefix": "p" * 33})
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidKeyError"


def test_the_largest_limit_is_allowed(client: httpx.Client) -> None:
    assert client.get("/v1/keys", params={"limit": 10_000}).status_code == 200
