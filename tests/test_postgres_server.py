"""The throwaway PostgreSQL server the backend's tests will run against."""

from __future__ import annotations

import psycopg


def test_a_postgresql_server_is_there_for_the_tests(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        conn.execute("CREATE TABLE IF NOT EXISTS probe (n integer)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT count(*) FROM probe").fetchone()[0] >= 1
    assert int(version) >= 130000
