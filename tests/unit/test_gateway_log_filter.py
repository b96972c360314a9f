"""The gateway's log filter walks exception chains that loop (the audit's H1: a group whose member's context is the
group itself kept the event loop spinning) — each exception once, and a bounded number in all."""

import logging

from bingobox_devkit.gateway.app import ConnectionDropped
from bingobox_devkit.gateway.main import _QuietDrops, chain_has


def _record(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "boom", None, (type(exc), exc, None))


def test_a_looping_chain_ends():
    inner = RuntimeError("inner")
    group = BaseExceptionGroup("g", [inner])
    inner.__context__ = group  # the loop
    assert chain_has(group, ConnectionDropped) is False
    assert _QuietDrops().filter(_record(group)) is True


def test_a_drop_is_found_anywhere_in_the_chain():
    drop = ConnectionDropped("x")
    group = ExceptionGroup("g", [ValueError("a"), ValueError("b")])
    group.exceptions[1].__cause__ = drop
    assert chain_has(group, ConnectionDropped)
    assert _QuietDrops().filter(_record(group)) is False


def test_a_very_long_chain_is_cut():
    e: BaseException = ValueError(0)
    for i in range(10_000):
        nxt = ValueError(i)
        nxt.__context__ = e
        e = nxt
    assert chain_has(e, ConnectionDropped) is False
