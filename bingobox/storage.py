"""Durable SQLite: WAL + synchronous=FULL, checked at open (a commit is on disk when it returns), one
connection shared by threads behind one lock, explicit ``BEGIN IMMEDIATE`` transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


class StorageError(RuntimeError):
    pass


class Database:
    def __init__(self, path: str | Path, schema: str = "") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self.conn.row_factory = sqlite3.Row
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            sync = self.conn.execute("PRAGMA synchronous").fetchone()[0]
            integrity = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot open the database: {e}") from None
        if mode != "wal" or sync != 2:
            raise StorageError(f"{self.path}: needs journal_mode=WAL and synchronous=FULL, got {mode}/{sync}")
        if integrity != "ok":
            raise StorageError(f"{self.path}: integrity check failed: {integrity}")
        self.lock = threading.RLock()
        self.commits = 0  # durable commits through tx() since open
        # called after each durable commit (the deterministic simulation crashes the store here)
        self.after_commit: Callable[[int], None] | None = None
        # a database that had no table before this open (its schema is the newest: no migration to run)
        self.fresh = self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None
        if schema:
            with self.lock:
                self.conn.executescript(schema)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def tx(self):
        """A write transaction (the writer lock is taken up front); committed durably on exit."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            self.commits += 1
            if self.after_commit is not None:
                self.after_commit(self.commits)

    def reader(self) -> sqlite3.Connection:
        """A read-only connection of its own (for one thread): long reads on it neither take this database's lock
        nor hold up its writer (WAL), so a big report never stalls the control loop's commits."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=True, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()
