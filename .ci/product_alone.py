"""The product stands alone: build both wheels, install the product's wheel alone in a clean venv, and prove it.

- the wheel holds the package ``bingobox`` and nothing else (no test rig, no top-level ``hardware``);
- ``bingobox --help`` works and lists the product's commands only;
- ``check-config`` accepts every shipped store config;
- no module of the installed product imports the devkit, and the devkit cannot be imported there;
- ``bingobox run`` from that venv runs a store — the devkit's simulator and mock gateway started from the
  development venv (this interpreter) — through scripted shoppers, every charge checked against the ledger.

Run by ``make test`` (``make product-alone``) with the development venv's Python. Exits non-zero on any failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_COMMANDS = {"run", "check-config", "devices", "visits", "diagram", "hash-password", "fetch-keys",
                    "reset-clock", "fleet", "command-key", "vision"}
DEVKIT_COMMANDS = {"demo", "sim", "sim-ctl", "gateway", "simulate", "simulate-outage", "soak", "bench", "fleet-load"}


def sh(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def say(msg: str) -> None:
    print(f"product-alone: {msg}", flush=True)


def build_wheels(dist: Path) -> tuple[Path, Path]:
    for where in (ROOT, ROOT / "hardware"):
        sh(sys.executable, "-m", "build", "--wheel", "--outdir", dist, where)
    product = next(dist.glob("bingobox-*.whl"))
    devkit = next(dist.glob("bingobox_devkit-*.whl"))
    return product, devkit


def check_wheel(wheel: Path) -> None:
    tops = {n.split("/", 1)[0] for n in zipfile.ZipFile(wheel).namelist()}
    extra = {t for t in tops if t != "bingobox" and not t.endswith(".dist-info")}
    if extra:
        raise SystemExit(f"FAILED: the product's wheel installs more than bingobox: {sorted(extra)}")
    say(f"{wheel.name}: the package bingobox and its metadata, nothing else")


def make_venv(venv: Path, wheel: Path) -> Path:
    base = shutil.which("python3") or sys.executable
    sh(base, "-m", "venv", venv)
    py = venv / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    sh(*pip, wheel)
    # the face stack as the Makefile and docs/deployment.md install it (dlib from source: pip's wheel cache)
    sh(*pip, "--no-binary", "dlib", "dlib==20.0.1")
    sh(*pip, "face_recognition_models", "Pillow", "Click")
    sh(*pip, "--no-deps", "face_recognition")
    return py


def check_commands(venv: Path) -> None:
    out = sh(venv / "bin" / "bingobox", "--help").stdout
    listed = {m.group(1) for m in re.finditer(r"^ {4}([a-z][a-z-]*)(?:\s|$)", out, re.M)}  # argparse's command list
    if not listed >= PRODUCT_COMMANDS or listed & DEVKIT_COMMANDS:
        raise SystemExit(f"FAILED: bingobox --help lists {sorted(listed)}")
    say(f"bingobox --help: {len(listed)} commands, none of the devkit's")


def check_configs(venv: Path) -> None:
    configs = sorted((ROOT / "config").glob("store*.toml"))
    out = sh(venv / "bin" / "bingobox", "check-config", *configs, cwd=ROOT).stdout
    if "ok" not in out:
        raise SystemExit(f"FAILED: check-config: {out}")
    say(f"check-config: {', '.join(c.name for c in configs)}: ok")


IMPORT_PROBE = r"""
import ast, importlib, json, pkgutil, sys
from pathlib import Path

import requests
import bingobox
root = Path(bingobox.__file__).parent
static = []
for f in root.rglob("*.py"):
    for node in ast.walk(ast.parse(f.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        static += [f"{f.relative_to(root)}: {n}" for n in names if n.split(".")[0] in ("bingobox_devkit", "hardware")]
imported, failed = 0, []
for m in pkgutil.walk_packages(bingobox.__path__, "bingobox."):
    if m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
        imported += 1
    except Exception as e:
        failed.append(f"{m.name}: {type(e).__name__}: {e}")
try:
    import bingobox_devkit  # noqa: F401
    devkit = "importable"
except ModuleNotFoundError:
    devkit = "absent"
loaded = sorted(k for k in sys.modules if k.split(".")[0] in ("bingobox_devkit", "hardware"))
print(json.dumps({"static": static, "imported": imported, "failed": failed, "devkit": devkit,
                  "devkit_loaded": loaded}))
"""


def check_imports(py: Path) -> None:
    got = json.loads(sh(py, "-c", IMPORT_PROBE, cwd=tempfile.gettempdir()).stdout)
    if got["static"] or got["failed"] or got["devkit"] != "absent" or got["devkit_loaded"]:
        raise SystemExit(f"FAILED: the product's import graph: {got}")
    say(f"imported all {got['imported']} modules of the installed product: none reaches the devkit, which is "
        "not installed there")


def run_store(venv: Path, work: Path) -> None:
    from bingobox_devkit.harness.demo import Demo

    # the console script, not `python -m`: nothing of the checkout (the processes' working directory) on its path
    d = Demo(4, seed=5, faults=set(), run_dir=work / "store", testdata=ROOT / "tests" / "data", verbose=False,
             controller_command=[str(venv / "bin" / "bingobox")])
    try:
        summary = d.run()
        ran = d.procs["controller"].p.args[0]
        # the door panels speak both shipped languages from the wheel's own catalogs (package data)
        panel = requests.get(d.panels["exit"] + "/state", timeout=10).json()["message"]
    finally:
        d.close()
    if panel is None or panel["text"]["zh_Hans"]["title"] == panel["text"]["en"]["title"]:
        raise SystemExit(f"FAILED: the exit's panel from the product's venv: {panel}")
    if not str(ran).startswith(str(venv)):
        raise SystemExit(f"FAILED: the controller ran from {ran}, not the product's venv")
    bad = {k: summary[k] for k in ("lost", "doubled", "wrong_person", "wrong_amount") if summary[k]}
    if bad or summary["visits"] != 4:
        raise SystemExit(f"FAILED: the store run by the product's venv: {summary}")
    say(f"bingobox run from the product's venv against the devkit's simulator and gateway: {summary['visits']} "
        f"visits, {summary['charged']} charged, 0 lost / doubled / wrong; the exit's panel says "
        f"{panel['text']['en']['title']!r} / {panel['text']['zh_Hans']['title']!r}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="product-alone-") as tmp:
        work = Path(tmp)
        product, _devkit = build_wheels(work / "dist")
        check_wheel(product)
        py = make_venv(work / "venv", product)
        check_commands(work / "venv")
        check_configs(work / "venv")
        check_imports(py)
        os.environ.pop("PYTHONPATH", None)
        run_store(work / "venv", work)
    say("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
