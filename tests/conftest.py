import pytest

from tests.helpers import Sim


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
