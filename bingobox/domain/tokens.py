"""Entry codes: short-lived Ed25519-signed tokens the wallet app shows as a QR code, verified offline.

A JWS in compact form, signed and checked by PyJWT (EdDSA over Ed25519), with our claim checks on top:
  header  {"alg": "EdDSA", "typ": "bbx-entry", "kid": KEY_ID}
  payload {"v": 1, "sub": ACCOUNT (pseudonymous), "sto": STORE, "door": DOOR or "*", "iat": s, "exp": s,
           "jti": 128-bit random b64url, "fc": 0|1 (consented to face billing),
           "nm": the first name the shopper chose to be greeted by at the door (optional),
           "gs": the group's size, the shopper and their companions, 2-9 (optional: alone)}
The algorithm is pinned (no "alg" agility: "none", HS256-with-the-public-key and friends are refused), the key
is looked up by kid among pinned public keys, and every rejection carries a reason code. The claims are checked
here, not by the library (each has its own reason: a code from the future, an expired one, one that lives too long).
"""

from __future__ import annotations

import base64
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.types import Options

ALG = "EdDSA"
TYP = "bbx-entry"
VERSION = 1
MAX_LIFETIME_S = 60
CLOCK_SKEW_S = 30
MAX_CODE_LEN = 512
MAX_GROUP = 9  # the protocol's bound on "gs"; a store admits fewer ([visits] max_companions)
MAX_NAME_LEN = 12  # a first name on a door panel (JSON escapes CJK as \uXXXX: 12 keep the QR small)


class Reject(StrEnum):
    """Why an entry code was refused (shown on the screen and in the log)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    BAD_ALG = "bad_alg"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_STORE = "wrong_store"
    WRONG_DOOR = "wrong_door"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    REPLAYED = "replayed"


class CodeRejected(ValueError):
    def __init__(self, reason: Reject, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class EntryClaims:
    account: str
    store: str
    door: str
    iat: int
    exp: int
    jti: str
    face_consent: bool
    kid: str
    name: str | None = None  # the first name to greet (only if the shopper chose to show one)
    group: int = 1  # people on this code: the shopper (who pays) and their companions
    adult_from: date | None = None  # the day the account's holder is 18 (the wallet's check of their ID); None: unknown


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def door_name_ok(name: object) -> bool:
    """A name a door panel may show: 1-12 letters (any script), with single spaces, hyphens, apostrophes or
    middle dots between them — no digits, markup or control characters."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LEN or name != name.strip():
        return False
    allowed = {" ", "-", "'", "\u00b7", "\u30fb"}
    return all(unicodedata.category(ch)[0] in "LM" or ch in allowed for ch in name) and \
        unicodedata.category(name[0])[0] == "L" and "  " not in name


def issue(key: Ed25519PrivateKey, kid: str, account: str, store: str, door: str, now: int,
          lifetime_s: int = 60, face_consent: bool = False, jti: str | None = None, name: str | None = None,
          group: int = 1, adult_from: date | None = None) -> str:
    """Sign a new entry code (the wallet gateway's side)."""
    claims: dict[str, Any] = {"v": VERSION, "sub": account, "sto": store, "door": door, "iat": now,
                              "exp": now + lifetime_s, "jti": jti or b64e(secrets.token_bytes(16)),
                              "fc": int(face_consent)}
    if name is not None:
        if not door_name_ok(name):
            raise ValueError(f"not a name a door may show: {name!r}")
        claims["nm"] = name
    if group != 1:
        if not 2 <= group <= MAX_GROUP:
            raise ValueError(f"a group is 2-{MAX_GROUP} people")
        claims["gs"] = group
    if adult_from is not None:
        claims["adf"] = adult_from.isoformat()
    return jwt.encode(claims, key, algorithm=ALG, headers={"kid": kid, "typ": TYP})


def claims_of(code: str) -> dict[str, Any]:
    """The payload of a code, unverified (the issuer reads back what it signed)."""
    got: dict[str, Any] = jwt.decode(code, options={"verify_signature": False})
    return got


def _iso_date(v: object) -> date | None:
    """A YYYY-MM-DD claim as a date (None: not one)."""
    if not isinstance(v, str) or len(v) != 10:
        return None
    try:
        return date.fromisoformat(v)
    except ValueError:
        return None


def public_key_from_b64(x: str) -> Ed25519PublicKey:
    raw = b64d(x)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


_NO_LIBRARY_CLAIM_CHECKS: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                            "verify_iss": False, "verify_sub": False, "verify_jti": False, "require": []}


def verify(code: str, keys: dict[str, Ed25519PublicKey], store: str, door: str, now: float) -> EntryClaims:
    """Check everything but replay (the caller records the jti). Raises CodeRejected with the reason."""
    if len(code) > MAX_CODE_LEN:
        raise CodeRejected(Reject.TOO_LARGE, f"{len(code)} characters")
    code = code.strip()
    if code.count(".") != 2:
        raise CodeRejected(Reject.MALFORMED, "not three dot-separated parts")
    try:
        header = jwt.get_unverified_header(code)
    except jwt.PyJWTError as e:
        raise CodeRejected(Reject.MALFORMED, str(e)) from None
    if header.get("alg") != ALG or header.get("typ") != TYP:
        raise CodeRejected(Reject.BAD_ALG, f"alg={header.get('alg')!r} typ={header.get('typ')!r}")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise CodeRejected(Reject.UNKNOWN_KEY, f"kid={kid!r}")
    try:
        p = jwt.decode(code, key, algorithms=[ALG], options=_NO_LIBRARY_CLAIM_CHECKS)
    except jwt.InvalidSignatureError:
        raise CodeRejected(Reject.BAD_SIGNATURE) from None
    except jwt.PyJWTError as e:
        raise CodeRejected(Reject.MALFORMED, str(e)) from None
    kid = str(kid)
    if not isinstance(p, dict):
        raise CodeRejected(Reject.MALFORMED, "payload is not an object")
    if p.get("v") != VERSION:
        raise CodeRejected(Reject.UNSUPPORTED_VERSION, f"v={p.get('v')!r}")
    types = {"sub": str, "sto": str, "door": str, "iat": int, "exp": int, "jti": str, "fc": int}
    for field, typ in types.items():
        if not isinstance(p.get(field), typ) or isinstance(p.get(field), bool):
            raise CodeRejected(Reject.MALFORMED, f"field {field!r} missing or not {typ.__name__}")
    if not 0 < len(p["sub"]) <= 64 or not 16 <= len(p["jti"]) <= 64:
        raise CodeRejected(Reject.MALFORMED, "bad account or jti length")
    if p["sto"] != store:
        raise CodeRejected(Reject.WRONG_STORE, f"code is for store {p['sto']!r}")
    if p["door"] not in ("*", door):
        raise CodeRejected(Reject.WRONG_DOOR, f"code is for door {p['door']!r}")
    if "nm" in p and not door_name_ok(p["nm"]):
        raise CodeRejected(Reject.MALFORMED, "the name to greet is not a name")
    gs = p.get("gs", 1)
    if "gs" in p and (not isinstance(gs, int) or isinstance(gs, bool) or not 2 <= gs <= MAX_GROUP):
        raise CodeRejected(Reject.MALFORMED, f"a group is 2-{MAX_GROUP} people")
    adf = p.get("adf")
    adult_from = _iso_date(adf) if adf is not None else None
    if adf is not None and adult_from is None:
        raise CodeRejected(Reject.MALFORMED, "the adult-from date is not a date (YYYY-MM-DD)")
    if p["exp"] - p["iat"] > MAX_LIFETIME_S or p["exp"] <= p["iat"]:
        raise CodeRejected(Reject.LIFETIME_TOO_LONG, f"lifetime {p['exp'] - p['iat']} s")
    if now < p["iat"] - CLOCK_SKEW_S:
        raise CodeRejected(Reject.NOT_YET_VALID, f"issued {p['iat'] - now:.0f} s in the future")
    if now > p["exp"] + CLOCK_SKEW_S:
        raise CodeRejected(Reject.EXPIRED, f"expired {now - p['exp']:.0f} s ago")
    return EntryClaims(p["sub"], p["sto"], p["door"], p["iat"], p["exp"], p["jti"], bool(p["fc"]), kid, p.get("nm"),
                       gs, adult_from)
