"""The wallet's age check: an 18-digit resident ID number (GB 11643-1999, check character ISO 7064 MOD 11-2)
gives the day its holder is 18 — kept, signed into the account's codes — and nothing else of the date of birth."""

import time
from datetime import date

from bingobox.domain import tokens
from bingobox_devkit.gateway import resident_id
from tests.unit.test_wallet_app_api import STORE, gw  # noqa: F401  (the fixture)


def test_the_check_character_and_the_date_of_birth():
    assert resident_id.valid("11010519491231002X") and resident_id.valid("11010519491231002x")  # the standard's
    assert not resident_id.valid("110105194912310021")  # a wrong check character
    assert not resident_id.valid("1101051949123100") and not resident_id.valid("A1010519491231002X")
    assert resident_id.birth_date("11010519491231002X") == date(1949, 12, 31)
    today = date(2026, 12, 6)
    assert resident_id.adult_from("11010519491231002X", today) == date(1967, 12, 31)
    leap = _with_check("11010520080229123")  # born 29 February 2008: 18 on 1 March 2026
    assert resident_id.adult_from(leap, today) == date(2026, 3, 1)
    assert resident_id.adult_from(_with_check("11010520301231123"), today) is None  # born in the future
    assert resident_id.adult_from(_with_check("11010520080231123"), today) is None  # 31 February


def test_sign_up_keeps_only_the_adult_day_and_every_code_carries_it(gw):  # noqa: F811
    keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in gw.db.public_keys()}
    minor = _with_check("11010520150601123")
    acc = gw.signup(id_number=minor)
    assert acc["adult_from"] == "2033-06-01"
    code = gw.app("POST", "codes", {}).json()["code"]
    assert tokens.verify(code, keys, STORE, "bar-door", time.time()).adult_from == date(2033, 6, 1)
    row = dict(gw.db.one("SELECT * FROM accounts WHERE id=?", (acc["id"],)))
    assert not [k for k, v in row.items() if k != "id_hash" and "2015" in str(v)]  # no date of birth kept
    assert row["id_hash"] != minor
    gw.app("POST", "logout", {})
    other = gw.signup(id_number="110105199003074512", name="Li Lei")  # (not a valid check character: unknown)
    assert other["adult_from"] is None


def _with_check(first17: str) -> str:
    return first17 + resident_id.CHECK[sum(int(d) * w for d, w in zip(first17, resident_id.WEIGHTS, strict=True))
                                       % 11]
