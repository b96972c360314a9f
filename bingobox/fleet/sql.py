"""Where the fleet service keeps its state: a SQLite file (the default: one process, up to a few thousand stores),
or PostgreSQL when given a DSN (``postgresql://…``: a fleet that outgrows one file, several fleet instances sharing
one database). One small seam: ``tx()`` yields something with ``execute(sql, args)`` written with ``?`` placeholders
and the SQL both speak (``ON CONFLICT``, ``RETURNING``, ``FLOAT8``); ``json_text`` is the one expression
that differs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..storage import Database


def is_dsn(target: str) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


class SqliteStore:
    dialect = "sqlite"

    def __init__(self, path: str, schema: str, migrate: Callable[[Any], None] | None = None) -> None:
        self.db = Database(path, schema)
        if migrate is not None:
            with self.db.tx() as c:
                migrate(c)

    @staticmethod
    def json_text(column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    @contextmanager
    def tx(self) -> Iterator[Any]:
        with self.db.tx() as c:
            yield c

    def one(self, sql: str, args: tuple = ()) -> Any:
        return self.db.one(sql, args)

    def all(self, sql: str, args: tuple = ()) -> list:
        return self.db.all(sql, args)

    def close(self) -> None:
        self.db.close()


class _PgTx:
    """A psycopg cursor that takes ``?`` placeholders."""

    def __init__(self, cur) -> None:
        self.cur = cur

    def execute(self, sql: str, args: tuple | list = ()) -> Any:
        self.cur.execute(sql.replace("?", "%s"), tuple(args))
        return self.cur

    def executemany(self, sql: str, rows: list) -> None:
        self.cur.executemany(sql.replace("?", "%s"), rows)


class PostgresStore:
    dialect = "postgresql"

    def __init__(self, dsn: str, schema: str, migrate: Callable[[Any], None] | None = None) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(dsn, row_factory=dict_row, autocommit=False, connect_timeout=10)
        self.lock = threading.RLock()
        with self.tx() as c:
            c.execute("SELECT pg_advisory_xact_lock(4242)")  # several fleet instances starting at once
            for stmt in schema.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if migrate is not None:
                migrate(c)

    @staticmethod
    def json_text(column: str, key: str) -> str:
        return f"({column})::json->>'{key}'"

    @contextmanager
    def tx(self) -> Iterator[Any]:
        with self.lock:
            try:
                with self.conn.cursor() as cur:
                    yield _PgTx(cur)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise

    def one(self, sql: str, args: tuple = ()) -> Any:
        with self.tx() as c:
            return c.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list:
        with self.tx() as c:
            return c.execute(sql, args).fetchall()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def open_store(target: str, schema: str, migrate: Callable[[Any], None] | None = None) -> SqliteStore | PostgresStore:
    """``migrate(tx)``: brings an older database to the schema's version, in the transaction that made it."""
    return PostgresStore(target, schema, migrate) if is_dsn(target) else SqliteStore(target, schema, migrate)
