"""Vision tests run on the real photographs in shared/testdata (not copied into the repo: 15 MB of images).
Set BINGOBOX_TESTDATA to use another copy."""

import os
from pathlib import Path

import pytest

TESTDATA = Path(os.environ.get("BINGOBOX_TESTDATA", Path(__file__).resolve().parents[2].parent / "shared/testdata"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not (TESTDATA / "qr/expected.csv").is_file() or not (TESTDATA / "faces/manifest.csv").is_file():
        pytest.skip(f"the photographs are not at {TESTDATA} (expected ../shared/testdata beside the repo, "
                    "or set BINGOBOX_TESTDATA): vision accuracy cannot be measured without them")
    return TESTDATA
