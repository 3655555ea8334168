"""The store contract on every backend: one `store_url` fixture (tests/conftest.py)
runs each test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import pytest

from esctl import store as backends
from tests.store_contract import StoreContract, StoreInterfaceContract


class TestStore(StoreContract, StoreInterfaceContract):
    @pytest.fixture
    def store(self, store_url):
        with backends.open(store_url, create=True) as s:
            if isinstance(s, backends.EventStore):
                # esctl's own connection: triggers off, the writer keeps the derived
                # tables (test_sqlite_store.py runs the contract with them on).
                assert s._triggers_off
            yield s
