"""The one table of HTTP statuses: every aiokv error is in it, and the answers follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inprocess import in_process

import aiokv
from aiokv.errors import DataStoreError
from aiokv.server.errors import STATUS_OF, status_of

ERRORS = [
    getattr(aiokv, name)
    for name in aiokv.__all__
    if isinstance(getattr(aiokv, name), type) and issubclass(getattr(aiokv, name), DataStoreError)
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_every_aiokv_error_has_its_own_row(error: type[DataStoreError]) -> None:
    assert error in STATUS_OF


def test_a_subclass_gets_its_nearest_bases_status() -> None:
    class Newer(aiokv.KeyNotFoundError):
        pass

    assert status_of(Newer("x")) == 404
    assert status_of(aiokv.ValueTooLargeError("x")) == 413  # not InvalidValueError's 400


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (aiokv.CorruptionError("segment 3: bad record at offset 80"), 500),
        (aiokv.StoreIOError("fsync failed"), 503),
        (aiokv.StoreClosedError("the store is closed"), 503),
    ],
)
async def test_the_answer_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: DataStoreError, status: int
) -> None:
    store = aiokv.AsyncDataStore(tmp_path / "store")

    async def failing(key: str) -> dict[str, object]:
        raise error

    monkeypatch.setattr(store, "read", failing)
    async with in_process(store) as client:
        response = await client.get("/v1/keys/k")
    assert response.status_code == status
    assert response.json() == {"error": type(error).__name__, "message": str(error)}
