"""Property tests, on every backend: random interleavings of appends with random expected versions keep
versions gapless per stream and positions gapless overall, and every accept/refuse
decision matches a simple in-memory model of the rules."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esctl import ANY, EXISTS, NO_STREAM, NewEvent, WrongExpectedVersion
from esctl import store as backends
from tests.conftest import BACKENDS

streams = st.sampled_from(["a-1", "a-2", "b-1"])
expected_versions = st.one_of(st.sampled_from([ANY, NO_STREAM, EXISTS]), st.integers(0, 4))
appends = st.lists(st.tuples(streams, expected_versions, st.integers(1, 3)), max_size=25)


def model_accepts(expected, version: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return version == 0
    if expected is EXISTS:
        return version > 0
    return expected == version


@contextlib.contextmanager
def fresh_store(backend: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """A new store of `backend` for one example."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp, backends.open(Path(tmp) / "e.db", create=True) as store:
            yield store
        return
    from tests import postgres

    with (
        postgres.fresh_schema(request.getfixturevalue("postgres_url")) as url,
        backends.open(url, create=True) as store,
    ):
        yield store


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=60,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(appends)
def test_appends_follow_the_model(backend, request, ops):
    with fresh_store(backend, request) as store:
        model: dict[str, int] = {}
        log: list[tuple[str, int]] = []
        for stream, expected, count in ops:
            current = model.get(stream, 0)
            batch = [NewEvent(stream, "T", {"i": i}) for i in range(count)]
            if model_accepts(expected, current):
                result = store.append(stream, batch, expected)
                assert [e.version for e in result.events] == list(range(current + 1, current + count + 1))
                model[stream] = current + count
                log.extend((stream, e.version) for e in result.events)
            else:
                try:
                    store.append(stream, batch, expected)
                except WrongExpectedVersion as exc:
                    assert exc.actual == current
                else:
                    raise AssertionError(f"{expected} accepted at version {current}")
        events = list(store.read_all())
        assert [e.position for e in events] == list(range(1, len(log) + 1))
        assert [(e.stream, e.version) for e in events] == log
        for stream, version in model.items():
            assert [e.version for e in store.read_stream(stream)] == list(range(1, version + 1))
