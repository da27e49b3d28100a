"""One `store_factory` fixture per backend; every conformance test runs once per backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from shoal.core.ports import Store
from shoal.stores.memory import MemoryStore
from shoal.testing import StoreFactory
from tests.integration._postgres import postgres_url


def _memory(tmp_path: Path) -> StoreFactory:
    @asynccontextmanager
    async def factory() -> AsyncIterator[Store]:
        store = MemoryStore()
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    return factory


def _sqlite(tmp_path: Path, *, inline_writes: bool = False) -> StoreFactory:
    from shoal.stores.sqlite import SqliteStore

    @asynccontextmanager
    async def factory() -> AsyncIterator[Store]:
        store = SqliteStore(tmp_path / f"{uuid.uuid4().hex}.db", inline_writes=inline_writes)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    return factory


def _postgres(tmp_path: Path) -> StoreFactory:
    from shoal.stores.postgres.testing import fresh_database_store

    url = postgres_url()

    def factory() -> AbstractAsyncContextManager[Store]:
        return fresh_database_store(url)

    return factory


BACKENDS: dict[str, Callable[[Path], StoreFactory]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    # Local mode's store: lone writes run on the event loop, the rest on the writer thread.
    "sqlite-inline": partial(_sqlite, inline_writes=True),
    "postgres": _postgres,
}


def _params() -> list[object]:
    return [
        pytest.param(name, marks=[pytest.mark.postgres] if name == "postgres" else [], id=name)
        for name in BACKENDS
    ]


@pytest.fixture(params=_params())
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    async with store_factory() as opened:
        yield opened
