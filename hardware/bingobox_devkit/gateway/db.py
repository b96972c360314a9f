"""The gateway's persistent state (SQLite, WAL, synchronous=FULL): stores, accounts, signing keys, entry codes,
charges, refunds, the idempotency cache and used request nonces. One connection, one lock: every operation is
a short transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from bingobox.domain.tokens import b64e
from bingobox.storage import Database

from . import resident_id
from .shopper_db import SHOPPER_SCHEMA

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stores (store_id TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, real_name TEXT NOT NULL, id_hash TEXT NOT NULL UNIQUE,
  balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0), frozen INTEGER NOT NULL DEFAULT 0,
  face_consent INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (
  kid TEXT PRIMARY KEY, private_key BLOB NOT NULL, public_x TEXT NOT NULL, active INTEGER NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entry_codes (
  jti TEXT PRIMARY KEY, account_id TEXT NOT NULL, store_id TEXT NOT NULL, door TEXT NOT NULL,
  iat INTEGER NOT NULL, exp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS charges (
  id TEXT PRIMARY KEY, store_id TEXT NOT NULL, idem_key TEXT NOT NULL, account_id TEXT NOT NULL,
  amount_fen INTEGER NOT NULL CHECK (amount_fen > 0), currency TEXT NOT NULL, status TEXT NOT NULL,
  failure_reason TEXT, description TEXT, items TEXT, visit_id TEXT, refunded_fen INTEGER NOT NULL DEFAULT 0,
  resolve_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (store_id, idem_key));
CREATE INDEX IF NOT EXISTS charges_account ON charges (account_id);
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY, charge_id TEXT NOT NULL REFERENCES charges(id),
  amount_fen INTEGER NOT NULL CHECK (amount_fen > 0), reason TEXT, created_at REAL NOT NULL, idem_key TEXT);
CREATE TABLE IF NOT EXISTS idempotency (
  store_id TEXT NOT NULL, key TEXT NOT NULL, endpoint TEXT NOT NULL, request_hash TEXT NOT NULL,
  state TEXT NOT NULL, status INTEGER, body TEXT, created_at REAL NOT NULL, PRIMARY KEY (store_id, key));
CREATE TABLE IF NOT EXISTS nonces (store_id TEXT NOT NULL, nonce TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (store_id, nonce));
CREATE TABLE IF NOT EXISTS topups (id INTEGER PRIMARY KEY, account_id TEXT NOT NULL, amount_fen INTEGER NOT NULL,
  created_at REAL NOT NULL);
""" + SHOPPER_SCHEMA

IDEMPOTENCY_TTL_S = 24 * 3600
IN_FLIGHT_STALE_S = 60  # an in-flight marker older than this belongs to a request that died: retry may run
KEY_GRACE_S = 120  # a retired entry-code key stays valid this long (codes it signed live ≤ 60 s, plus clock skew)


class GatewayDB(Database):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)
        with self.tx() as c:
            for table, col, decl in (("signing_keys", "retired_at", "REAL"),  # (databases from before rotation)
                                     ("accounts", "erased_at", "REAL"),  # (… before the wallet app)
                                     ("accounts", "door_name", "TEXT"),  # (… before door panels greeted)
                                     ("accounts", "adult_from", "TEXT"),  # (… before age-restricted goods)
                                     ("entry_codes", "used_at", "REAL"),
                                     ("entry_codes", "visit_id", "TEXT"),  # (… before codes bound charges)
                                     ("visit_reports", "opened_at", "REAL"),
                                     ("visit_reports", "live", "TEXT"),  # (… before live baskets)
                                     ("refunds", "idem_key", "TEXT")):  # (… before a dispute needed its own)
                if col not in {r[1] for r in c.execute(f"PRAGMA table_info({table})")}:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
            if not c.execute("SELECT 1 FROM meta WHERE k='pepper'").fetchone():
                c.execute("INSERT INTO meta VALUES ('pepper', ?)", (secrets.token_hex(32),))
        if not self.public_keys():
            self.rotate_key()

    # stores and accounts --------------------------------------------------------------------------
    def upsert_store(self, store_id: str, secret: str | None = None) -> str:
        secret = secret or secrets.token_urlsafe(32)
        with self.tx() as c:
            c.execute("INSERT INTO stores VALUES (?, ?, ?) ON CONFLICT(store_id) DO UPDATE SET secret=excluded.secret",
                      (store_id, secret, time.time()))
        return secret

    def store_secret(self, store_id: str) -> str | None:
        row = self.one("SELECT secret FROM stores WHERE store_id=?", (store_id,))
        return row["secret"] if row else None

    def id_hash(self, id_number: str) -> str:
        row = self.one("SELECT v FROM meta WHERE k='pepper'")
        assert row is not None  # (made when the database was)
        pepper = row["v"]
        return hmac.new(pepper.encode(), id_number.strip().upper().encode(), hashlib.sha256).hexdigest()

    def create_account(self, real_name: str, id_number: str, balance_fen: int, face_consent: bool,
                       door_name: str | None = None) -> dict:
        acc_id = "acc_" + secrets.token_hex(8)
        with self.tx() as c:
            c.execute("INSERT INTO accounts (id, real_name, id_hash, balance_fen, frozen, face_consent, door_name, "
                      "created_at, adult_from) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
                      (acc_id, real_name, self.id_hash(id_number), balance_fen, int(face_consent), door_name,
                       time.time(), adult_from_of(id_number)))
        got = self.account(acc_id)
        assert got is not None
        return got

    def account(self, acc_id: str) -> dict | None:
        row = self.one("SELECT id, real_name, balance_fen, frozen, face_consent, door_name, created_at, erased_at, "
                       "adult_from FROM accounts WHERE id=?", (acc_id,))
        if row is None:
            return None
        return {"id": row["id"], "real_name": row["real_name"], "balance_fen": row["balance_fen"],
                "frozen": bool(row["frozen"]), "face_consent": bool(row["face_consent"]),
                "door_name": row["door_name"], "created_at": row["created_at"], "erased_at": row["erased_at"],
                "adult_from": row["adult_from"]}

    # signing keys ----------------------------------------------------------------------------------
    def rotate_key(self) -> str:
        key = Ed25519PrivateKey.generate()
        kid = "k" + secrets.token_hex(4)
        x = b64e(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        priv = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        with self.tx() as c:
            now = time.time()
            c.execute("UPDATE signing_keys SET active=0, retired_at=? WHERE active=1", (now,))
            c.execute("INSERT INTO signing_keys (kid, private_key, public_x, active, created_at) "
                      "VALUES (?, ?, ?, 1, ?)", (kid, priv, x, now))
        return kid

    def active_key(self) -> tuple[str, Ed25519PrivateKey]:
        row = self.one("SELECT kid, private_key FROM signing_keys WHERE active=1")
        assert row is not None  # (a key is made with the database)
        return row["kid"], Ed25519PrivateKey.from_private_bytes(row["private_key"])

    def public_keys(self) -> list[dict]:
        """Every key with ``not_after`` (unix seconds) for retired ones: the end of their grace period."""
        return [{"kid": r["kid"], "alg": "EdDSA", "crv": "Ed25519", "x": r["public_x"], "active": bool(r["active"]),
                 "not_after": None if r["retired_at"] is None else int(r["retired_at"] + KEY_GRACE_S)}
                for r in self.all("SELECT kid, public_x, active, retired_at FROM signing_keys ORDER BY created_at")]

    # nonces ----------------------------------------------------------------------------------------
    def use_nonce(self, store_id: str, nonce: str, now: float) -> bool:
        """Record a request nonce; False if it was seen in the last 10 minutes."""
        with self.tx() as c:
            c.execute("DELETE FROM nonces WHERE ts < ?", (now - 600,))
            try:
                c.execute("INSERT INTO nonces VALUES (?, ?, ?)", (store_id, nonce, now))
            except sqlite3.IntegrityError:
                return False
        return True

    # charges ---------------------------------------------------------------------------------------
    def charge_row(self, charge_id: str, store_id: str | None = None) -> sqlite3.Row | None:
        if store_id is None:
            return self.one("SELECT * FROM charges WHERE id=?", (charge_id,))
        return self.one("SELECT * FROM charges WHERE id=? AND store_id=?", (charge_id, store_id))

    def resolve_pending(self, now: float) -> None:
        """Pending (user-paying) charges whose time has come succeed now, or fail if the money is gone."""
        if self.one("SELECT 1 FROM charges WHERE status='pending' AND resolve_at <= ? LIMIT 1", (now,)) is None:
            return  # the usual case: no write transaction for a read-only query
        with self.tx() as c:
            for row in c.execute("SELECT * FROM charges WHERE status='pending' AND resolve_at <= ?", (now,)).fetchall():
                acc = c.execute("SELECT balance_fen, frozen FROM accounts WHERE id=?", (row["account_id"],)).fetchone()
                if acc["frozen"] or acc["balance_fen"] < row["amount_fen"]:
                    reason = "account_frozen" if acc["frozen"] else "insufficient_balance"
                    c.execute("UPDATE charges SET status='failed', failure_reason=?, updated_at=? WHERE id=?",
                              (reason, now, row["id"]))
                else:
                    c.execute("UPDATE accounts SET balance_fen = balance_fen - ? WHERE id=?",
                              (row["amount_fen"], row["account_id"]))
                    c.execute("UPDATE charges SET status='succeeded', updated_at=? WHERE id=?", (now, row["id"]))


def charge_json(row: sqlite3.Row) -> dict:
    return {"id": row["id"], "object": "charge", "status": row["status"], "amount_fen": row["amount_fen"],
            "currency": row["currency"], "account_id": row["account_id"], "store_id": row["store_id"],
            "idempotency_key": row["idem_key"], "visit_id": row["visit_id"], "description": row["description"],
            "failure_reason": row["failure_reason"], "refunded_fen": row["refunded_fen"],
            "items": json.loads(row["items"]) if row["items"] else [], "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


def adult_from_of(id_number: str) -> str | None:
    """What the wallet keeps of an ID number's date of birth: the day its holder is 18 (ISO), or None (unknown)."""
    got = resident_id.adult_from(id_number, date.today())
    return got.isoformat() if got else None
