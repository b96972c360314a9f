"""The status screen's words: every identifier the store counts, flags, alarms or reviews by has words in both
shipped languages (from the same catalog as the door panels); the screen serves them; an unknown one stays as is."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from bingobox import i18n
from bingobox.core.checkout import COUNTED
from bingobox.core.telemetry import COUNTS
from bingobox.domain import review
from bingobox.domain.door import ALARM_STATES
from bingobox.i18n.operator import WORDS

SRC = Path(i18n.__file__).parents[1]


def _identifiers() -> set[str]:
    """What the store's code names its counters, flags and alarms by (literal ones), and the review causes."""
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    found = set(re.findall(r'telemetry\.count\("([a-z_]+)"', text))
    found |= set(re.findall(r'\.flag\("([a-z_]+)"', text))
    found |= set(re.findall(r'\balarm\("([a-z_]+)"', text))
    found |= set(re.findall(r'stranger_inside\([^,]+, "([a-z_]+)"', text))
    found |= set(re.findall(r'finish\(v, [a-z_]+, "([a-z_]+)"\)', text))
    found |= set(re.findall(r'emit\("fault", \{"fault": "([a-z_]+)"', text))
    found |= set(re.findall(r'"fault": "([a-z_]+)"', text))
    found |= set(COUNTS) | set(COUNTED.values()) | set(ALARM_STATES.values())
    found |= set(review.CAUSES) | set(review.CAUSES.values())
    return found


def test_every_identifier_the_screen_shows_has_words():
    ids = _identifiers()
    assert len(ids) > 50, sorted(ids)  # (the patterns do find them)
    assert ids <= set(WORDS), sorted(ids - set(WORDS))


def test_the_words_are_extracted_and_translated_with_the_panels_catalog():
    path = SRC / "i18n" / "operator.py"
    ids = {m[1] for m in extract_from_file("python", str(path), keywords={"N_": None})}
    assert ids == set(WORDS.values())
    with open(SRC / "i18n/locale/zh_Hans/LC_MESSAGES/bingobox.po", "rb") as f:
        translated = {m.id for m in read_po(f) if m.id and m.string and not m.fuzzy}
    assert ids <= translated, ids - translated
    zh = i18n.operator_words("zh_Hans")
    assert zh["fallback_qr"] == "出店扫码（未用人脸）"
    assert i18n.operator_words("en")["fallback_qr"].startswith("exits by")


def test_the_screen_serves_its_words_in_its_language_or_the_one_asked_for(tmp_path):
    from bingobox.journal import Journal
    from bingobox.screen.app import make_app
    from bingobox.screen.auth import Auth
    from tests.unit.test_screen import FakeStore

    journal = Journal(tmp_path / "store.db")
    client = TestClient(make_app(FakeStore(journal), Auth({}), language="zh_Hans"))
    got = client.get("/api/words").json()
    assert got["lang"] == "zh_Hans" and got["words"]["entries"] == "已放行进店人数"
    assert client.get("/api/words?lang=en").json()["words"]["entries"] == "shoppers let in"
    assert client.get("/api/words?lang=xx").json()["lang"] == "zh_Hans"  # (an unknown language: the screen's)
    client.close()
    journal.close()
