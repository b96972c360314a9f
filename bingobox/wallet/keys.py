"""Pinning the wallet gateway's entry-code keys: ``GET /v1/public-keys`` over https (its certificate checked against
the system's CAs, or pinned by its SHA-256 fingerprint; plain http only to loopback), the keys still in force written
to the config's ``wallet.keys_file`` — checked by the loader the controller uses before it replaces the old file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from ..config import https_unless_loopback
from ..domain.entry import load_pinned
from .client import session


class NotAsked(ValueError):
    """The request itself is wrong (plain http to a network host, a malformed fingerprint): nothing was fetched."""


def fetch(gateway: str, out: Path, tls_fingerprint: str | None = None) -> str:
    """Fetch and pin; what was pinned, in words. ``NotAsked`` or ValueError says what went wrong."""
    url = gateway.rstrip("/")
    try:
        https_unless_loopback(url)
        http = session(tls_fingerprint)
    except ValueError as e:
        raise NotAsked(f"{url}: {e}") from None
    try:
        # (verify given per request: requests lets $REQUESTS_CA_BUNDLE override the session's setting)
        r = http.get(url + "/v1/public-keys", timeout=10, verify=http.verify)
        r.raise_for_status()
        doc = r.json()
        now = time.time()
        kept = [k for k in doc["keys"] if k.get("not_after") is None or float(k["not_after"]) >= now]
    except (requests.RequestException, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot fetch keys from {url}: {e}") from None
    finally:
        http.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": kept, "fetched_from": url, "fetched_at": int(now)}, indent=2))
    try:
        keys, not_after = load_pinned(tmp)
    except ValueError:
        tmp.unlink()
        raise
    tmp.replace(out)
    dropped = len(doc["keys"]) - len(kept)
    return (f"{out}: pinned {len(keys)} key(s): {', '.join(keys)}"
            + (f" ({len(not_after)} retiring)" if not_after else "")
            + (f"; {dropped} expired left out" if dropped else "")
            + "; a running controller takes them on SIGHUP (systemctl reload bingobox)")
