import atexit
import os
import shutil
import tempfile

import pytest
from hypothesis import settings

from tests.helpers import Sim

# Fuzzing profiles: `ci` (the suite's short run) and `fuzz` (`make fuzz`: the long run). HYPOTHESIS_PROFILE picks.
settings.register_profile("ci", max_examples=150, deadline=None, database=None, derandomize=False)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The face processes keep dlib's face detector in the box's cache (bingobox/vision/dlib_models.py): the suite keeps
# one of its own, built by its first face process, not the user's
_CACHE = tempfile.mkdtemp(prefix="bingobox-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
os.environ.pop("CACHE_DIRECTORY", None)
atexit.register(shutil.rmtree, _CACHE, True)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulator process per test module (tests reset what they change)."""
    s = Sim(tmp_path_factory.mktemp("sim"))
    yield s
    s.stop()


@pytest.fixture
def fresh_sim(tmp_path):
    """A simulator process of the test's own (for fault tests that leave devices in odd states)."""
    s = Sim(tmp_path)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from tests.helpers import Gateway

    g = Gateway(tmp_path_factory.mktemp("gw"))
    yield g
    g.stop()
