"""Every backend against a dict: random sequences of every operation of the contract, each
outcome (value or error type) the model's. TTLs are long enough never to pass meanwhile: the
expiry itself is tested in test_contract.py, where time can be moved on for each backend."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from _backends import Backend
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from aiokv import DataStoreError

pytestmark = pytest.mark.slow

keys = st.sampled_from(["a", "b", "user:1", "user:2", "user:10", "é", "k" * 32, "*", "[x]"])
prefixes = st.sampled_from(["", "user:", "user:1", "a", "*", "["])
leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=5)
values = st.dictionaries(
    st.text(max_size=4),
    st.recursive(leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    max_size=4,
)
ttls = st.none() | st.just(3_600)


def machine_for(backend: Backend) -> type[RuleBasedStateMachine]:
    class ContractMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.store: Any = backend.make()
            self.run(self.store.open())
            self.model: dict[str, dict[str, Any]] = {}

        def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
            return self.loop.run_until_complete(coro)

        def outcome(self, coro: Coroutine[Any, Any, Any]) -> tuple[str, Any]:
            try:
                return "ok", self.run(coro)
            except DataStoreError as exc:
                return type(exc).__name__, None

        def teardown(self) -> None:
            self.run(self.store.delete_many(list(self.model)))
            self.run(self.store.close())
            self.loop.close()

        @rule(key=keys, value=values, ttl=ttls)
        def create(self, key: str, value: dict[str, Any], ttl: int | None) -> None:
            expected = "KeyExistsError" if key in self.model else "ok"
            assert self.outcome(self.store.create(key, value, ttl))[0] == expected
            self.model.setdefault(key, value)

        @rule(key=keys)
        def read(self, key: str) -> None:
            expected = ("ok", self.model[key]) if key in self.model else ("KeyNotFoundError", None)
            assert self.outcome(self.store.read(key)) == expected

        @rule(key=keys)
        def delete(self, key: str) -> None:
            expected = "ok" if self.model.pop(key, None) is not None else "KeyNotFoundError"
            assert self.outcome(self.store.delete(key))[0] == expected

        @rule(key=keys, ttl=ttls)
        def touch(self, key: str, ttl: int | None) -> None:
            expected = "ok" if key in self.model else "KeyNotFoundError"
            assert self.outcome(self.store.touch(key, ttl))[0] == expected

        @rule(items=st.dictionaries(keys, values, max_size=4), ttl=ttls)
        def create_many(self, items: dict[str, dict[str, Any]], ttl: int | None) -> None:
            expected = "KeyExistsError" if set(items) & set(self.model) else "ok"
            assert self.outcome(self.store.create_many(items, ttl=ttl))[0] == expected
            if expected == "ok":
                self.model.update(items)

        @rule(wanted=st.lists(keys, max_size=5))
        def read_many(self, wanted: list[str]) -> None:
            expected = {key: self.model[key] for key in wanted if key in self.model}
            assert self.run(self.store.read_many(wanted)) == expected

        @rule(wanted=st.lists(keys, max_size=5))
        def delete_many(self, wanted: list[str]) -> None:
            expected = len({key for key in wanted if self.model.pop(key, None) is not None})
            assert self.run(self.store.delete_many(wanted)) == expected

        @rule(prefix=prefixes)
        def items(self, prefix: str) -> None:
            got = self.run(_listed(self.store.items(prefix)))
            expected = {k: v for k, v in self.model.items() if k.startswith(prefix)}
            assert len(got) == len(expected)
            assert dict(got) == expected

        @invariant()
        def exists_as_modelled(self) -> None:
            for key in ("a", "*"):
                assert self.run(self.store.exists(key)) == (key in self.model)

    return ContractMachine


async def _listed(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def test_every_backend_behaves_as_a_dict(backend: Backend, soak: int) -> None:
    run_state_machine_as_test(
        machine_for(backend),
        settings=settings(
            max_examples=25 * soak,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
