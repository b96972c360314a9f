"""Vision tests run on the real photographs in tests/data (copied from the project's shared test data; where each
file comes from and under which license: tests/data/SOURCES.md). Set BINGOBOX_TESTDATA to use another copy."""

import os
from pathlib import Path

import pytest

TESTDATA = Path(os.environ.get("BINGOBOX_TESTDATA", Path(__file__).resolve().parents[1] / "data"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not (TESTDATA / "qr/expected.csv").is_file() or not (TESTDATA / "faces/manifest.csv").is_file():
        pytest.fail(f"the photographs are not at {TESTDATA} (tests/data in the repo, or set "
                    "BINGOBOX_TESTDATA): vision accuracy cannot be measured without them")
    return TESTDATA
