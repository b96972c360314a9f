"""Entry by NFC card: the signed list of bound cards a store checks taps against, offline.

The wallet gateway signs the list (a JWS, EdDSA, with the same pinned keys as entry codes but its own ``typ``, so
neither can pass for the other):
  header  {"alg": "EdDSA", "typ": "bbx-cards", "kid": KEY_ID}
  payload {"v": 1, "sto": STORE, "iat": s, "exp": s, "lim": fen (the most one card visit may be charged),
           "cards": [{"c": CARD_HASH, "id": CARD_ID, "sub": ACCOUNT, "fc": 0|1, "nm": first name (optional)}]}
A card is named by ``card_hash(uid)``, never by its UID: neither the list nor the journal holds a UID. A revoked
card is simply absent from the next list; a list past ``exp`` admits nobody (the store fetches a new one every
minute while the gateway answers). A card is a weaker factor than a fresh code — a UID can be cloned — so a card
visit's charge is bounded by ``lim`` (above it, an operator decides).

Pairing a card: the wallet app shows ``PAIR_PREFIX + code`` as a QR code; the shopper shows it to the entrance
camera and taps the card within ``PAIR_WINDOW_S``; the store sends (code, card hash) to the gateway, which binds
the card to the account that asked for the code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .tokens import ALG, CLOCK_SKEW_S, door_name_ok

TYP = "bbx-cards"
VERSION = 1
MAX_LIST_LIFETIME_S = 24 * 3600  # a list never vouches for a card longer than a day
MAX_CARDS = 20_000
MAX_LIST_BYTES = 4 * 1024 * 1024
PAIR_PREFIX = "BBXPAIR:"
PAIR_CODE = re.compile(r"^[A-Z2-7]{10}$")  # base32, 50 bits, lives minutes and is used once
PAIR_WINDOW_S = 30.0
CARD_ID = re.compile(r"^crd_[a-f0-9]{16}$")
_HASH = re.compile(r"^[a-f0-9]{32}$")


class ListRejected(ValueError):
    """A card list that is not the gateway's, not this store's, or not current."""


@dataclass(frozen=True, slots=True)
class CardEntry:
    card_id: str
    account: str
    face_consent: bool
    name: str | None = None


@dataclass(frozen=True)
class CardList:
    store: str
    iat: int
    exp: int
    limit_fen: int
    kid: str
    cards: dict[str, CardEntry]  # card hash → entry

    def lookup(self, card: str) -> CardEntry | None:
        return self.cards.get(card)

    def current(self, now: float) -> bool:
        return self.iat - CLOCK_SKEW_S <= now <= self.exp


def card_hash(uid: bytes) -> str:
    """What names a card everywhere (128 bits of SHA-256 over the UID): the UID itself is kept nowhere."""
    if len(uid) not in (4, 7, 10):
        raise ValueError("a card UID is 4, 7 or 10 bytes")
    return hashlib.sha256(b"bbx-card:" + uid).hexdigest()[:32]


def pair_code_of(text: str) -> str | None:
    """The pairing code in a QR text (None: not a pairing code)."""
    if not text.startswith(PAIR_PREFIX):
        return None
    code = text[len(PAIR_PREFIX):].strip()
    return code if PAIR_CODE.match(code) else None


def issue(key: Ed25519PrivateKey, kid: str, store: str, now: int, lifetime_s: int, limit_fen: int,
          cards: list[dict[str, Any]]) -> str:
    """Sign a store's card list (the gateway's side)."""
    return jwt.encode({"v": VERSION, "sto": store, "iat": now, "exp": now + lifetime_s, "lim": limit_fen,
                       "cards": cards}, key, algorithm=ALG, headers={"kid": kid, "typ": TYP})


_NO_CLAIM_CHECKS: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                         "verify_iss": False, "verify_sub": False, "verify_jti": False, "require": []}


def verify(text: str, keys: dict[str, Ed25519PublicKey], store: str, now: float) -> CardList:
    """Check a card list: the gateway's signature, this store, its lifetime and every entry. ListRejected says why."""
    if len(text) > MAX_LIST_BYTES:
        raise ListRejected(f"{len(text)} bytes: larger than any list of {MAX_CARDS} cards")
    try:
        header = jwt.get_unverified_header(text)
    except jwt.PyJWTError as e:
        raise ListRejected(f"malformed: {e}") from None
    if header.get("alg") != ALG or header.get("typ") != TYP:
        raise ListRejected(f"not a card list: alg={header.get('alg')!r} typ={header.get('typ')!r}")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ListRejected(f"signed with an unknown key {kid!r}")
    try:
        p = jwt.decode(text, key, algorithms=[ALG], options=_NO_CLAIM_CHECKS)
    except jwt.InvalidSignatureError:
        raise ListRejected("bad signature") from None
    except jwt.PyJWTError as e:
        raise ListRejected(f"malformed: {e}") from None
    if not isinstance(p, dict) or p.get("v") != VERSION:
        raise ListRejected("unsupported version")
    for f in ("iat", "exp", "lim"):
        if not isinstance(p.get(f), int) or isinstance(p.get(f), bool) or p[f] < 0:
            raise ListRejected(f"field {f!r} missing or not a count")
    if p.get("sto") != store:
        raise ListRejected(f"the list is for store {p.get('sto')!r}")
    if not 0 < p["exp"] - p["iat"] <= MAX_LIST_LIFETIME_S:
        raise ListRejected(f"a lifetime of {p['exp'] - p['iat']} s")
    if now > p["exp"]:
        raise ListRejected(f"expired {now - p['exp']:.0f} s ago")
    if now < p["iat"] - CLOCK_SKEW_S:
        raise ListRejected(f"issued {p['iat'] - now:.0f} s in the future")
    raw = p.get("cards")
    if not isinstance(raw, list) or len(raw) > MAX_CARDS:
        raise ListRejected("cards: not a list of at most 20 000")
    cards: dict[str, CardEntry] = {}
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or set(c) - {"c", "id", "sub", "fc", "nm"}:
            raise ListRejected(f"cards[{i}]: not a card entry")
        h, cid, sub, fc, nm = c.get("c"), c.get("id"), c.get("sub"), c.get("fc"), c.get("nm")
        if not isinstance(h, str) or not _HASH.match(h) or not isinstance(cid, str) or not CARD_ID.match(cid):
            raise ListRejected(f"cards[{i}]: bad card hash or id")
        if not isinstance(sub, str) or not 0 < len(sub) <= 64 or fc not in (0, 1) or isinstance(fc, bool):
            raise ListRejected(f"cards[{i}]: bad account or consent")
        if nm is not None and not door_name_ok(nm):
            raise ListRejected(f"cards[{i}]: the name to greet is not a name")
        if h in cards:
            raise ListRejected(f"cards[{i}]: the same card twice")
        cards[h] = CardEntry(cid, sub, bool(fc), nm)
    return CardList(store, p["iat"], p["exp"], p["lim"], str(kid), cards)


def card_jti(card_id: str) -> str:
    """What a card visit names as its entry (``entry_jti``): the gateway checks the card is this account's."""
    return f"card.{card_id}"
