"""The plumbing shared by the Hypothesis state machines that check a store against a dict."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine

from aiokv import AsyncDataStore, DataStoreError, ManualClock


class StoreMachine(RuleBasedStateMachine):
    """A store on a private event loop, in a fresh directory, beside a model of it.

    The model maps key -> (value, deadline or None); a key is live while
    ``clock.time() < deadline``. Subclasses say how the store is opened and add the rules.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.workdir = Path(tempfile.mkdtemp(prefix="aiokv-model-"))
        self.path = self.workdir / "store"
        self.clock = ManualClock(1_700_000_000.0)
        self.model: dict[str, tuple[dict[str, Any], float | None]] = {}
        self.store: AsyncDataStore | None = None
        self.store = self._open()

    def _open(self) -> AsyncDataStore:
        raise NotImplementedError

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    @property
    def opened(self) -> AsyncDataStore:
        assert self.store is not None
        return self.store

    def outcome(self, coro: Coroutine[Any, Any, Any]) -> tuple[str, Any]:
        """``("ok", result)``, or the name of the store's error and None."""
        try:
            return "ok", self.run(coro)
        except DataStoreError as exc:
            return type(exc).__name__, None

    def live(self, key: str) -> dict[str, Any] | None:
        held = self.model.get(key)
        if held is None:
            return None
        value, deadline = held
        if deadline is not None and self.clock.time() >= deadline:
            return None
        return value

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.run(self.store.close())
        finally:
            try:
                self.run(self.loop.shutdown_asyncgens())
                self.run(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()
                shutil.rmtree(self.workdir, ignore_errors=True)
