"""Config validation: every shipped file is valid; unknown keys, bad values and broken TOML are reported
with the file, the key and the reason."""

import subprocess
import sys
from pathlib import Path

import pytest

from bingobox.config import ConfigError, load_store_config
from bingobox_devkit.sim.config import load_sim_config

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[store]
id = "s1"

[[doors]]
name = "entrance"
port = "loop://"
energize_to_unlock = true
"""


def problems(tmp_path, text: str) -> list[str]:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_store_config(p)
    return e.value.problems


def test_shipped_configs_are_valid():
    load_store_config(ROOT / "config/store.example.toml")
    shared = load_store_config(ROOT / "config/store.shared.example.toml")
    assert shared.reader_names() == ["shelf-1", "shelf-2", "shelf-3", "exit-area"]
    store = load_store_config(ROOT / "config/store.sim.toml")
    sim = load_sim_config(ROOT / "config/sim.toml")
    # every device the controller expects is one the simulator provides
    assert {d.name for d in store.doors} <= {d.name for d in sim.doors}
    assert {r.name for r in store.readers} <= {r.name for r in sim.readers}
    assert {r.name for r in store.card_readers} == {r.name for r in sim.card_readers} == {"entrance-nfc", "exit-nfc"}
    ports = {c.name: c.port for c in sim.cameras}
    for cam in store.cameras:
        assert str(cam.source).endswith(f":{ports[cam.name]}/stream.mjpg")
    sim_doors = {d.name: d for d in sim.doors}
    for d in store.doors:
        assert d.energize_to_unlock == sim_doors[d.name].energize_to_unlock


def test_unknown_key_names_file_and_key(tmp_path):
    (p,) = problems(tmp_path, GOOD + "colour = 'red'\n")
    assert p.endswith("c.toml: doors[0].colour: unknown key")


def test_out_of_range_and_missing(tmp_path):
    text = GOOD.replace("energize_to_unlock = true", "poll_hz = 500\nbaudrate = 12345")
    got = problems(tmp_path, text)
    assert any("doors[0].poll_hz" in p and "less than or equal to 50" in p for p in got)
    assert any("doors[0].baudrate" in p and "not a standard baud rate" in p for p in got)
    assert any("doors[0].energize_to_unlock" in p and "Field required" in p for p in got)


def test_cross_field_rules(tmp_path):
    got = problems(tmp_path, GOOD + "rex_input = 0\n")
    assert any("must be different inputs" in p for p in got)
    got = problems(tmp_path, GOOD + "[[readers]]\nname = 'entrance'\nport = 'loop://'\n")
    assert any("used twice" in p for p in got)


def test_door_watchdog_and_maglock_wiring(tmp_path):
    got = problems(tmp_path, GOOD + "comm_watchdog_s = 2\n")
    assert any("comm_watchdog_register and comm_watchdog_s go together" in p for p in got)
    wd = "comm_watchdog_register = 250\ncomm_watchdog_s = 600\ncomm_watchdog_unit_s = 0.001\n"
    got = problems(tmp_path, GOOD + wd)
    assert any("does not fit the register" in p for p in got)
    maglock = GOOD.replace("= true", "= false") + "rex_input = 1\nfire_input = 2\n"
    p = tmp_path / "m.toml"
    p.write_text(maglock + "rex_cuts_power = true\nfire_cuts_power = true\n")
    assert load_store_config(p).doors[0].hardware_warnings() == [
        "doors.entrance: maglock without the board's communication watchdog (comm_watchdog_register): if the "
        "controller dies the relay stays as it was"]
    p.write_text(maglock + "rex_cuts_power = true\nfire_cuts_power = true\ncomm_watchdog_register = 250\n"
                 "comm_watchdog_s = 2\n")
    assert load_store_config(p).doors[0].hardware_warnings() == []
    p.write_text(GOOD + "rex_input = 1\n")  # a strike: no power needed to leave
    assert load_store_config(p).doors[0].hardware_warnings() == []
    res = subprocess.run([sys.executable, "-m", "bingobox", "check-config", str(p)], capture_output=True, text=True)
    assert res.returncode == 0 and "warning:" not in res.stdout


def test_a_maglock_that_could_trap_people_is_refused(tmp_path):
    """M7 (second audit): a maglock whose REX and fire releases are not declared wired in hardware is refused by
    check-config and by run — the example's exit door was one — unless waived by name."""
    maglock = GOOD.replace("= true", "= false")
    for extra, missing in (("", "rex_cuts_power = true and fire_cuts_power = true"),
                           ("rex_cuts_power = true\n", "fire_cuts_power = true"),
                           ("rex_cuts_power = true\nfire_cuts_power = false\n", "fire_cuts_power = true")):
        got = problems(tmp_path, maglock + extra)
        assert len(got) == 1 and "doors[0]" in got[0] and f"needs {missing}" in got[0], got
    p = tmp_path / "m.toml"
    p.write_text(maglock)
    for cmd in (["check-config", str(p)], ["run", "--config", str(p)]):
        res = subprocess.run([sys.executable, "-m", "bingobox", *cmd], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and "needs rex_cuts_power" in res.stdout + res.stderr, res
    p.write_text(maglock + 'egress_waiver = "staff door, key switch beside it; approved by J. Wu 2026-12-01"\n')
    assert "running under a waiver" in load_store_config(p).doors[0].hardware_warnings()[0]
    assert problems(tmp_path, GOOD + 'egress_waiver = "not a maglock at all, no"\n')


def test_broken_toml_and_missing_file(tmp_path):
    (p,) = problems(tmp_path, "[store\nid=1")
    assert "not valid TOML" in p and "line 1" in p
    with pytest.raises(ConfigError, match="file not found"):
        load_store_config(tmp_path / "nope.toml")


def test_check_config_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + "speed = 1\n")
    cmd = [sys.executable, "-m", "bingobox", "check-config"]
    ok = subprocess.run([*cmd, str(ROOT / "config/store.sim.toml"), str(ROOT / "config/sim.toml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.count(": ok") == 2
    res = subprocess.run([*cmd, str(bad)], capture_output=True, text=True)
    assert res.returncode == 2 and "bad.toml: doors[0].speed: unknown key" in res.stdout


def test_wallet_section_rules(tmp_path):
    wallet = '\n[wallet]\ngateway_url = "http://127.0.0.1:1"\nkeys_file = "k.json"\n'
    got = problems(tmp_path, GOOD + wallet)
    assert any("exactly one of store_secret or secret_file" in p for p in got)
    got = problems(tmp_path, GOOD + wallet + 'store_secret = "short"\n')
    assert any("wallet.store_secret" in p and "at least 16" in p for p in got)
    got = problems(tmp_path, GOOD + wallet + 'secret_file = "s"\n[wallet.limits]\nmax_visit_fen = 9\n'
                   'max_pending_fen = 5\n')
    assert any("max_visit_fen cannot exceed" in p for p in got)
    p = tmp_path / "ok.toml"
    p.write_text(GOOD + wallet + 'store_secret = "0123456789abcdef-long"\n')
    cfg = load_store_config(p)
    assert "0123456789abcdef" not in repr(cfg) and cfg.wallet.secret() == "0123456789abcdef-long"


def test_screen_section_rules(tmp_path):
    from bingobox.screen.auth import check_password, hash_password

    got = problems(tmp_path, GOOD + '\n[screen]\nport = 8080\nallow_everyone = true\n')
    assert any("screen.allow_everyone: unknown key" in p for p in got)
    got = problems(tmp_path, GOOD + '\n[screen]\n[[screen.operators]]\nname = "alice"\npassword_hash = "hunter22"\n')
    assert any("screen.operators[0].password_hash" in p for p in got)  # a plain password is not a hash
    ops = tmp_path / "operators.toml"
    ops.write_text(f'[[operators]]\nname = "bob"\npassword_hash = "{hash_password("bobs password")}"\n')
    p = tmp_path / "ok.toml"
    p.write_text(GOOD + f'\n[screen]\noperators_file = "{ops}"\n')
    (bob,) = load_store_config(p).screen.all_operators()
    assert bob.name == "bob" and check_password("bobs password", bob.password_hash)
    ops.write_text('[[operators]]\nname = "bob"\npassword_hash = "x"\n')
    with pytest.raises(ValueError):
        load_store_config(p).screen.all_operators()


def test_two_devices_on_one_port_are_refused_at_load(tmp_path):
    got = problems(tmp_path, GOOD + '\n[[doors]]\nname = "exit"\nport = "loop://"\nenergize_to_unlock = true\n')
    assert any("entrance and exit use the same port 'loop://'" in p for p in got)
    link = tmp_path / "by-id"
    link.symlink_to("/dev/null")  # a by-id name and the device it points to are one port
    text = (f'[store]\nid = "s1"\n[[doors]]\nname = "a"\nport = "{link}"\nenergize_to_unlock = true\n'
            '[[readers]]\nname = "r"\nport = "/dev/null"\n')
    assert any("a and r use the same port" in p for p in problems(tmp_path, text))


BUS = """
[store]
id = "s1"
[[buses]]
name = "rs485"
port = "loop://"
baudrate = 19200
[[doors]]
name = "entrance"
bus = "rs485"
energize_to_unlock = true
[[doors]]
name = "exit"
bus = "rs485"
energize_to_unlock = true
lock_coil = 1
contact_input = 3
rex_input = 4
"""


def test_two_doors_on_one_board_with_their_own_coils_and_inputs_are_accepted(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(BUS)  # (one fire contact, input 2, wired to both: allowed)
    cfg = load_store_config(p)
    assert [(d.bus, d.unit, d.lock_coil) for d in cfg.doors] == [("rs485", 1, 0), ("rs485", 1, 1)]
    p.write_text(BUS.replace('lock_coil = 1\n', 'lock_coil = 1\nunit = 2\n'))  # two boards on one line
    assert [d.unit for d in load_store_config(p).doors] == [1, 2]


@pytest.mark.parametrize("change, expect", [
    (("lock_coil = 1", "lock_coil = 0"), "doors.exit.lock_coil: coil 0 of unit 1 on bus rs485 is also entrance's"),
    (("contact_input = 3", "contact_input = 1"), "doors.exit.contact_input: input 1 of unit 1 on bus rs485 is also "
                                                 "entrance's rex_input"),
    (("rex_input = 4", "rex_input = 0"), "doors.exit.rex_input: input 0 of unit 1 on bus rs485 is also entrance's "
                                         "contact_input"),
    (("rex_input = 4", "rex_input = 4\nresponse_timeout_s = 0.5"), "doors.exit.response_timeout_s: 0.5 differs "
                                                                    "from entrance's 0.2 on the same board"),
    (('bus = "rs485"\nenergize_to_unlock = true\nlock_coil', 'bus = "rs458"\nenergize_to_unlock = true\nlock_coil'),
     "doors.exit.bus: no [[buses]] entry named 'rs458'"),
    (("rex_input = 4", "rex_input = 4\nbaudrate = 9600"), "baudrate: set on the bus 'rs485', not on a door on it"),
    (('bus = "rs485"\nenergize_to_unlock = true\nlock_coil', 'port = "loop://"\nenergize_to_unlock = true\nlock_coil'),
     "rs485 and exit use the same port 'loop://'"),
])
def test_conflicting_wiring_on_a_bus_is_refused_with_the_key(tmp_path, change, expect):
    got = problems(tmp_path, BUS.replace(*change))
    assert any(expect in p for p in got), got


def test_doors_sharing_a_port_without_a_bus_are_told_how(tmp_path):
    got = problems(tmp_path, GOOD + '\n[[doors]]\nname = "exit"\nport = "loop://"\nenergize_to_unlock = true\n')
    assert any("declare the line once under [[buses]]" in p for p in got), got
    got = problems(tmp_path, GOOD.replace('port = "loop://"', 'port = "loop://"\nbus = "x"'))
    assert any("exactly one of port (its own board) and bus" in p for p in got), got


def test_the_catalog_is_checked_against_what_the_gateway_accepts(tmp_path):
    cat = tmp_path / "catalog.csv"
    cat.write_text("epc_prefix,sku,name,price_fen\n"
                   "E2806894000050240001,cola,Cola,350\n"
                   f"E2806894000050240002,chips,{'x' * 101},650\n"
                   "E2806894000050240003,water,Water,-5\n"
                   "XYZ,gum,Gum,120\n"
                   "E2806894000050240001,cola2,Cola again,360\n"
                   f"E2806894000050240004,{'s' * 65},Onigiri,20000000\n")
    got = problems(tmp_path, f'catalog = "{cat}"\n' + GOOD)
    assert got == [f"{tmp_path / 'c.toml'}: catalog: {cat}:3: name: 101 characters; the gateway accepts 1 to 100",
                   f"{tmp_path / 'c.toml'}: catalog: {cat}:4: price_fen: -5 fen is outside 0..10000000",
                   f"{tmp_path / 'c.toml'}: catalog: {cat}:5: epc_prefix: 'XYZ' is not hexadecimal",
                   f"{tmp_path / 'c.toml'}: catalog: {cat}:6: epc_prefix: E2806894000050240001 is listed twice",
                   f"{tmp_path / 'c.toml'}: catalog: {cat}:7: sku: 65 characters; the gateway accepts 1 to 64",
                   f"{tmp_path / 'c.toml'}: catalog: {cat}:7: price_fen: 20000000 fen is outside 0..10000000"]


@pytest.mark.parametrize("url,ok", [("https://gw.example.com", True), ("http://127.0.0.1:8600", True),
                                    ("http://localhost:8600", True), ("http://[::1]:8600", True),
                                    ("http://gw.example.com", False), ("http://10.0.0.5:8600", False)])
def test_the_gateway_is_reached_over_https_except_on_loopback(tmp_path, url, ok):
    from bingobox.config import WalletConfig

    secret = tmp_path / "s"
    secret.write_text("x" * 20)
    cfg = {"gateway_url": url, "secret_file": str(secret), "keys_file": str(tmp_path / "k.json")}
    if ok:
        WalletConfig.model_validate(cfg)
    else:
        with pytest.raises(ValueError, match="must be https://"):
            WalletConfig.model_validate(cfg)


def test_secret_files_are_owner_only_and_never_on_the_command_line(tmp_path):
    import os

    from bingobox.secretfiles import read_secret, write_secret

    p = write_secret(tmp_path / "secret", "s" * 20)
    assert os.stat(p).st_mode & 0o777 == 0o600 and read_secret(p) == "s" * 20
    os.chmod(p, 0o644)
    with pytest.raises(ValueError, match="readable by every user"):
        read_secret(p)
    write_secret(p, "t" * 20)  # rewriting an existing file makes it owner-only again
    assert os.stat(p).st_mode & 0o777 == 0o600
    res = subprocess.run([sys.executable, "-m", "bingobox", "gateway", "--db", str(tmp_path / "g.db"),
                          "--store", "s1=" + "s" * 20], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2 and "visible to every user in `ps`" in res.stderr
    assert "s" * 20 not in res.stderr  # and the refusal does not echo it


def test_the_store_secret_file_follows_the_secret_file_rules(tmp_path):
    import os

    from bingobox.config import WalletConfig
    from bingobox.secretfiles import write_secret

    secret = write_secret(tmp_path / "s", "x" * 20)
    cfg = WalletConfig.model_validate({"gateway_url": "http://127.0.0.1:1", "secret_file": str(secret),
                                       "keys_file": str(tmp_path / "k.json")})
    assert cfg.secret() == "x" * 20
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match=r"wallet\.secret_file: .* readable by every user"):
        cfg.secret()
    write_secret(secret, "short")
    with pytest.raises(ConfigError, match="at least 16"):
        cfg.secret()
