"""Shared fixtures for the interop tests: a psycopg connection to the fixture database under test."""
import os

import psycopg
import pytest


@pytest.fixture
def db():
    conn = psycopg.connect(
        dbname=os.environ.get("AGW_TEST_DB", "agw_test_mini"),
        host=os.environ.get("PGHOST", "/var/run/postgresql"),
        autocommit=False,
    )
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture
def signing_secret(db):
    return db.execute("SELECT jwt_secret FROM api_gateway.settings").fetchone()[0]
