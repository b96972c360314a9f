"""NFC cards bound to wallet accounts: pairing codes, the signed card list each store fetches, and what a card
visit may be charged.

    wallet app  POST   /app/api/cards/pairing   a one-time pairing code (QR text ``BBXPAIR:…``), 5 minutes
                GET    /app/api/cards           the account's cards (no UID: the store sends only a hash)
                DELETE /app/api/cards/{id}      remove a card (it drops out of the next list: within one store fetch)
    terminal    GET    /v1/cards                {"list": the signed list (``bingobox.domain.cards``)}
                POST   /v1/cards/pair           {code, card}: bind the tapped card to the code's account

A card visit names ``card.<card id>`` as its entry; the gateway takes it for that card's account only, and charges
such a visit at most ``limit_fen`` in all (a card can be cloned: the limit bounds what a clone can cost).
"""

from __future__ import annotations

import base64
import secrets
import sqlite3
import time
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from bingobox.domain import cards

from . import shopper_db as sdb

PAIRING_TTL_S = 300
LIST_LIFETIME_S = 3600  # a store admits a card this long after the gateway last vouched for it (removal: sooner,
# at its next fetch)
MAX_CARDS_PER_ACCOUNT = 3
PAIRINGS_PER_ACCOUNT_PER_HOUR = 10


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(pattern=r"^[A-Z2-7]{10}$")]
    card: Annotated[str, Field(pattern=r"^[a-f0-9]{32}$")]


def card_visit_charged(c: sqlite3.Connection, store_id: str, visit_id: str) -> int:
    """What a store has charged a visit so far (what was not refused)."""
    row = c.execute("SELECT coalesce(sum(amount_fen), 0) FROM charges WHERE store_id=? AND visit_id=? AND "
                    "status != 'failed'", (store_id, visit_id)).fetchone()
    return int(row[0])


def bind_card(c: sqlite3.Connection, account_id: str, jti: str) -> float:
    """A card visit's entry (``card.<id>``): the card must be (or have been: removed later, its visits still stand)
    this account's. Returns when it was bound; ``Refused`` otherwise."""
    card_id = jti[len("card."):]
    row = c.execute("SELECT account_id, created_at FROM cards WHERE id=?", (card_id,)).fetchone()
    if row is None:
        row = c.execute("SELECT account_id, created_at FROM removed_cards WHERE id=?", (card_id,)).fetchone()
    if row is None or row["account_id"] != account_id:
        raise sdb.Refused("not_your_card", "no card of this account has that id", 403)
    return float(row["created_at"])


def add_card_routes(app: FastAPI, db, terminal, shopper, api_error: type[Exception], limit_fen: int) -> None:
    """``terminal``: the store-signature dependency; ``shopper(request, change)``: the logged-in account."""
    @app.post("/app/api/cards/pairing", tags=["wallet app"], responses={409: {}, 429: {}})
    def new_pairing(request: Request):
        """A one-time code that binds the next card tapped after it is shown at a store's entrance."""
        account_id = shopper(request, change=True)
        now = time.time()
        with db.tx() as c:
            n = c.execute("SELECT count(*) FROM cards WHERE account_id=?", (account_id,)).fetchone()[0]
            if n >= MAX_CARDS_PER_ACCOUNT:
                raise api_error(409, "too_many_cards", f"at most {MAX_CARDS_PER_ACCOUNT} cards: remove one first")
            recent = c.execute("SELECT count(*) FROM card_pairings WHERE account_id=? AND created_at > ?",
                               (account_id, now - 3600)).fetchone()[0]
            if recent >= PAIRINGS_PER_ACCOUNT_PER_HOUR:
                raise api_error(429, "throttled", "too many pairing codes this hour")
            code = base64.b32encode(secrets.token_bytes(10)).decode()[:10]
            c.execute("INSERT INTO card_pairings (code, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                      (code, account_id, now, now + PAIRING_TTL_S))
            c.execute("DELETE FROM card_pairings WHERE expires_at < ?", (now - 86_400,))
        from .wallet_app import qr_png_data_uri

        text = cards.PAIR_PREFIX + code
        return {"code": code, "text": text, "qr_png": qr_png_data_uri(text), "expires_at": now + PAIRING_TTL_S,
                "now": now}

    @app.get("/app/api/cards", tags=["wallet app"])
    def my_cards(request: Request):
        account_id = shopper(request)
        rows = db.all("SELECT id, created_at, store_id FROM cards WHERE account_id=? ORDER BY created_at",
                      (account_id,))
        return {"cards": [dict(r) for r in rows], "limit_fen": limit_fen, "max_cards": MAX_CARDS_PER_ACCOUNT}

    @app.delete("/app/api/cards/{card_id}", tags=["wallet app"], responses={404: {}})
    def remove_card(card_id: str, request: Request):
        account_id = shopper(request, change=True)
        with db.tx() as c:
            row = c.execute("SELECT created_at FROM cards WHERE id=? AND account_id=?",
                            (card_id[:64], account_id)).fetchone()
            if row is None:
                raise api_error(404, "no_such_card", "no such card of yours")
            c.execute("INSERT OR REPLACE INTO removed_cards VALUES (?, ?, ?, ?)",
                      (card_id, account_id, row["created_at"], time.time()))
            c.execute("DELETE FROM cards WHERE id=?", (card_id,))
            sdb.event_in(c, account_id, "card_removed", {"card": card_id})
        return {"removed": card_id}

    @app.get("/v1/cards", tags=["terminal"])
    def card_list(store_id: str = Depends(terminal)):
        """The signed list of every bound card (the store checks taps against it offline)."""
        rows = db.all("SELECT k.id, k.card_hash, k.account_id, a.face_consent, a.door_name FROM cards k JOIN "
                      "accounts a ON a.id = k.account_id WHERE a.erased_at IS NULL AND a.frozen = 0 ORDER BY k.id")
        entries = []
        for r in rows:
            e = {"c": r["card_hash"], "id": r["id"], "sub": r["account_id"], "fc": int(bool(r["face_consent"]))}
            if r["door_name"]:
                e["nm"] = r["door_name"]
            entries.append(e)
        kid, key = db.active_key()
        return {"list": cards.issue(key, kid, store_id, int(time.time()), LIST_LIFETIME_S, limit_fen, entries),
                "count": len(entries)}

    @app.post("/v1/cards/pair", tags=["terminal"], responses={403: {}, 404: {}, 409: {}, 410: {}})
    def pair(body: PairIn, store_id: str = Depends(terminal)):
        """Bind the card tapped at ``store_id``'s entrance to the account whose pairing code was shown there."""
        now = time.time()
        with db.tx() as c:
            p = c.execute("SELECT account_id, expires_at, used_at FROM card_pairings WHERE code=?",
                          (body.code,)).fetchone()
            if p is None:
                raise api_error(404, "no_such_pairing", "no such pairing code")
            if p["used_at"] is not None or p["expires_at"] < now:
                raise api_error(410, "pairing_expired", "that pairing code was used or has expired")
            owner = c.execute("SELECT account_id FROM cards WHERE card_hash=?", (body.card,)).fetchone()
            if owner is not None and owner["account_id"] != p["account_id"]:
                raise api_error(409, "card_taken", "that card is bound to another account")
            c.execute("UPDATE card_pairings SET used_at=? WHERE code=?", (now, body.code))
            if owner is not None:
                return {"card_id": c.execute("SELECT id FROM cards WHERE card_hash=?", (body.card,)).fetchone()[0],
                        "again": True}
            n = c.execute("SELECT count(*) FROM cards WHERE account_id=?", (p["account_id"],)).fetchone()[0]
            if n >= MAX_CARDS_PER_ACCOUNT:
                raise api_error(409, "too_many_cards", f"at most {MAX_CARDS_PER_ACCOUNT} cards per account")
            card_id = "crd_" + secrets.token_hex(8)
            c.execute("INSERT INTO cards (id, account_id, card_hash, created_at, store_id) VALUES (?, ?, ?, ?, ?)",
                      (card_id, p["account_id"], body.card, now, store_id))
            sdb.event_in(c, p["account_id"], "card_added", {"card": card_id, "store_id": store_id})
        return {"card_id": card_id, "again": False}
