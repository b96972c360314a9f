"""The ``bingobox`` command: the product's own verbs — running a store (``run``, ``check-config``, ``visits``,
``hash-password``, ``fetch-keys``, ``reset-clock``), looking at one (``devices``, ``vision``, ``diagram``) and the
chain's fleet service (``fleet``, ``command-key``) — and whatever an installed plugin registers in the entry-point
group ``bingobox.commands`` (the devkit's ``demo``, ``sim``, ``gateway``, ``simulate``, ``bench`` …). The product
imports no plugin: it asks importlib.metadata which are installed."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ..config import ConfigError

log = logging.getLogger("bingobox")
PLUGIN_GROUP = "bingobox.commands"
# kinds of config file ``check-config`` knows beyond the store's: top-level table → (name, loader, summary); a
# plugin adds its own (the devkit: the simulator's [sim])
CONFIG_KINDS: dict[str, tuple[str, Callable[[str], Any], Callable[[Any], str]]] = {}


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # it logs every callback at INFO


def load(loader: Callable[[str], Any], path: str) -> Any:
    """Load a config with ``loader``; on problems print them (file: key: reason) and return None."""
    try:
        return loader(path)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    from ..fleet.main import add_parser as add_fleet
    from . import inspect, store

    p = argparse.ArgumentParser(prog="bingobox", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store.add_parsers(sub)
    inspect.add_parsers(sub)
    add_fleet(sub)
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()(sub)
        except Exception as e:  # a broken plugin costs only its own commands
            print(f"bingobox: plugin {ep.name} ({ep.value}) not loaded: {e}", file=sys.stderr)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return int(args.fn(args))
