"""The door panels' words in each shipped language: message catalogs (gettext ``.po`` files read with Babel) for
the English message ids of ``messages.py``. A missing or broken translation shows the English, never a key."""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from typing import Any

from babel.messages.pofile import read_po

from ..domain.panel import PanelMessage
from .messages import CHROME, MESSAGES
from .operator import WORDS

log = logging.getLogger(__name__)
LANGUAGES = ("en", "zh_Hans")  # en: the message ids themselves; the others: locale/<lang>/LC_MESSAGES/bingobox.po


@cache
def catalog(lang: str) -> dict[str, str]:
    """Message id → translation for ``lang`` (empty for English). Fuzzy and empty entries are left out."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalog for {lang!r}: shipped are {', '.join(LANGUAGES)}")
    if lang == "en":
        return {}
    path = resources.files(__package__).joinpath("locale", lang, "LC_MESSAGES", "bingobox.po")
    with path.open("rb") as f:
        po = read_po(f, locale=lang.replace("_Hans", ""))
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(text: str, lang: str, params: dict[str, Any] | None = None) -> str:
    translated = catalog(lang).get(text, text)
    if not params:
        return translated
    try:
        return translated % params
    except (KeyError, ValueError, TypeError):  # a translation with a broken placeholder: the English, filled in
        log.error("translation of %r into %s does not take %s: English shown", text, lang, sorted(params))
        return text % params


def money(fen: int) -> str:
    """Integer fen as a shopper reads it: ¥12.30."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100}.{abs(fen) % 100:02d}"


def render(msg: PanelMessage, lang: str) -> dict[str, str]:
    """A panel message in ``lang``: its title and its line of what to do."""
    title, detail = MESSAGES[msg.key]
    params: dict[str, Any] = dict(msg.params)
    if "amount_fen" in params:
        params["amount"] = money(int(params.pop("amount_fen")))
    return {"title": gettext(title, lang, params), "detail": gettext(detail, lang, params)}


def chrome(lang: str) -> dict[str, str]:
    return {k: gettext(v, lang) for k, v in CHROME.items()}


def operator_words(lang: str) -> dict[str, str]:
    """The status screen's words for the store's identifiers in ``lang`` (identifier → words)."""
    return {k: gettext(v, lang) for k, v in WORDS.items()}
