"""Where the devkit finds the repository's files it works with: the demo store's catalog, the shipped broker
policy and ACL, the photographs of ``tests/data``. The devkit is a development kit: it runs from a bingobox checkout
(installed editable, as ``make setup`` does) or is told where one is (``$BINGOBOX_REPO``)."""

from __future__ import annotations

import os
from pathlib import Path


def repo() -> Path:
    """The bingobox checkout: ``$BINGOBOX_REPO``, else the one this devkit was installed from (editable)."""
    env = os.environ.get("BINGOBOX_REPO")
    here = Path(__file__).resolve().parents[2]
    for candidate in ([Path(env)] if env else []) + [here, Path.cwd()]:
        if (candidate / "config" / "catalog.csv").is_file():
            return candidate
    raise RuntimeError("the devkit works from a bingobox checkout (its config/ and tests/data): install it editable "
                       "from one (make setup), or set BINGOBOX_REPO to one")


def testdata() -> str:
    """The photographs the demo's shoppers show the cameras (``$BINGOBOX_TESTDATA``, else the checkout's)."""
    env = os.environ.get("BINGOBOX_TESTDATA")
    if env:
        return env
    try:
        return str(repo() / "tests" / "data")
    except RuntimeError:
        return "tests/data"
