"""What a store says on MQTT and what it accepts — topics, payloads, signed commands and Home Assistant discovery.
No I/O here (``link`` talks to the broker; the fleet service uses the same functions).

Topics under ``<prefix>/<store_id>/``: ``status`` (retained online/offline, the last will), ``state`` (retained: the
store's state, doors, devices, inside count, charges pending — no personal data), ``event/<kind>`` (alarms, visits
ended, charge outcomes, device faults: each with an id and a time), ``metrics``, ``cmd/<name>`` and
``cmd/<name>/result``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

from ..view import View

COMMANDS = ("lock_down", "release", "unlock", "clear_alarm", "restock")
MAX_SKEW_S = 300
LATE_S = 5.0  # an event published this long after it happened is marked late


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, TLS?) of ``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    tls = u.scheme == "mqtts"
    return u.hostname or "", u.port or (8883 if tls else 1883), tls


def topic(prefix: str, store_id: str, *parts: str) -> str:
    return "/".join([prefix, store_id, *parts])


# A fleet instance's presence: retained "online" once it has subscribed, "offline" as its last will and when it
# stops. Not a store's topic: a store id starts with a letter or digit. Only fleet users may write it (the ACL).
FLEET = "_fleet"


def fleet_status_topic(prefix: str, instance: str) -> str:
    return "/".join([prefix, FLEET, instance, "status"])


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def state_payload(view: View, store_id: str, open_alarms: int) -> dict:
    """The store's state for the fleet: nothing that names a shopper."""
    devices = view.get("devices") or {}
    doors = {n: {"open": d.get("door_open"), "locked": d.get("lock_engaged"), "online": d.get("online"),
                 "state": d.get("state")} for n, d in devices.items() if d.get("kind") == "door"}
    charges = view.get("charges") or {}
    return {
        "store_id": store_id, "t": view.get("t") or time.time(), "state": view.get("state"),
        "what_works": view.get("what_works"), "open_now": view.get("open_now"),
        "problems": view.get("problems") or [], "inside": view.get("inside", 0), "doors": doors,
        "devices": {n: {"kind": d.get("kind"), "online": bool(d.get("online"))} for n, d in devices.items()},
        "charges_pending": charges.get("pending_count", 0), "charges_pending_fen": charges.get("pending_fen", 0),
        "gateway_up": charges.get("gateway_ok") is not False, "open_alarms": open_alarms,
        "reviews_open": (view.get("reviews") or {}).get("open", 0),
        "review_rate": (view.get("reviews") or {}).get("review_rate", 0.0),
        "review_causes": (view.get("reviews") or {}).get("by_cause", {}),
        "restock": list(((view.get("stock_alerts") or {}).get("restock") or [])[:100]),
        "stock": dict(list(((view.get("stock_alerts") or {}).get("counts") or {}).items())[:200]),
        "expired_lots": sum(1 for x in (view.get("stock_alerts") or {}).get("expiring") or [] if x.get("expired")),
        "off_sale_zones": sorted(z for z, st in (view.get("zones") or {}).items() if st.get("off_sale"))[:32],
    }


def metrics_payload(view: View, store_id: str) -> dict:
    lat = view.get("latency", {})
    loop = view.get("loop")
    return {"store_id": store_id, "t": view.get("t") or time.time(), "counts": view.get("counts") or {},
            "entry_ms": lat.get("entry_ms"), "exit_ms": lat.get("exit_ms"),
            "loop_lag_ms": loop["lag_ms"] if loop else None}


def event_payload(store_id: str, kind: str, row_id: int, t: float, data: dict, now: float | None = None,
                  waited: bool = False, epoch: int = 0) -> dict:
    """``waited``: it happened while the store was not connected (it waited in the queue): late, whatever its age.
    The id (store, the journal's epoch, the queue's row) is unique for ever: the fleet drops QoS 1 duplicates by it."""
    now = now or time.time()
    return {"id": f"{store_id}:{epoch}:{row_id}", "store_id": store_id, "kind": kind, "t": t, "published_at": now,
            "late": waited or now - t > LATE_S, "data": data}


# commands ---------------------------------------------------------------------------------------------
# v2: each store has its own key, derived from the fleet's master key (a store's key signs for that store only)
COMMAND_VERSION = "bbx-cmd-v2"


def store_command_key(master: str, store_id: str) -> str:
    """The key a store checks its commands with: HMAC-SHA256(master, "bbx-cmd-key-v2" LF store id), hex. The fleet
    keeps the master; each store box holds only its own key, so a compromised box can sign for no other store."""
    return hmac.new(master.encode(), f"bbx-cmd-key-v2\n{store_id}".encode(), hashlib.sha256).hexdigest()


def _canonical(store_id: str, name: str, tx: str, operator: str, ts: int, args: dict) -> bytes:
    return dumps([COMMAND_VERSION, store_id, name, tx, operator, ts, args])


def sign_command(secret: str, store_id: str, name: str, tx: str, operator: str, args: dict,
                 ts: int | None = None) -> dict:
    """A command as the fleet service publishes it on ``cmd/<name>``."""
    ts = int(time.time()) if ts is None else ts
    sig = hmac.new(secret.encode(), _canonical(store_id, name, tx, operator, ts, args), hashlib.sha256).hexdigest()
    return {"tx": tx, "operator": operator, "ts": ts, "args": args, "sig": sig}


class CommandRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_command(secret: str | None, store_id: str, name: str, raw: bytes, now: float,
                  seen: set[str]) -> dict:
    """A command's payload checked: JSON with tx, operator, ts, args and a valid signature, not older than
    ``MAX_SKEW_S``, a transaction id not seen before. Raises ``CommandRefused``."""
    if secret is None:
        raise CommandRefused("commands_off", "this store takes no MQTT commands (no command_secret_file)")
    if name not in COMMANDS:
        raise CommandRefused("unknown_command", f"no command {name!r} (commands: {', '.join(COMMANDS)})")
    try:
        cmd = json.loads(raw)
        tx, operator, ts, args, sig = cmd["tx"], cmd["operator"], cmd["ts"], cmd.get("args") or {}, cmd["sig"]
        ok_types = (isinstance(tx, str) and 1 <= len(tx) <= 64 and isinstance(operator, str)
                    and 1 <= len(operator) <= 64 and isinstance(ts, int) and isinstance(args, dict)
                    and isinstance(sig, str))
    except (ValueError, KeyError, TypeError):
        ok_types = False
    if not ok_types:
        raise CommandRefused("bad_command", "a command is JSON: tx, operator, ts (unix s), args {}, sig")
    want = hmac.new(secret.encode(), _canonical(store_id, name, tx, operator, ts, args), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        raise CommandRefused("bad_signature", "the command's signature does not match")
    if abs(now - ts) > MAX_SKEW_S:
        raise CommandRefused("stale", f"the command is {now - ts:+.0f} s from the store's clock")
    if tx in seen:
        raise CommandRefused("replayed", f"transaction {tx} was carried out already")
    return cmd


# Home Assistant discovery -----------------------------------------------------------------------------
def ha_discovery(ha_prefix: str, prefix: str, store_id: str, view: View, lockdown_switch: bool) -> dict[str, dict]:
    """Retained discovery configs (topic → payload): one device per store, its entities reading ``state`` and
    ``status`` — every topic they name is this store's own (checked: a config naming another store's topic would
    let Home Assistant act on that store)."""
    node = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in store_id)
    st, avail = topic(prefix, store_id, "state"), topic(prefix, store_id, "status")
    device = {"identifiers": [f"bingobox_{node}"], "name": f"bingobox {store_id}", "manufacturer": "bingobox",
              "model": "unmanned store controller"}
    base = {"state_topic": st, "availability_topic": avail, "payload_available": "online",
            "payload_not_available": "offline", "device": device}
    out: dict[str, dict] = {}

    def add(component: str, key: str, name: str, **extra: Any) -> None:
        out[f"{ha_prefix}/{component}/bingobox_{node}/{key}/config"] = {
            **base, "name": name, "unique_id": f"bingobox_{node}_{key}", "object_id": f"bingobox_{node}_{key}",
            **extra}

    add("sensor", "state", "Store state", value_template="{{ value_json.state }}", icon="mdi:store")
    add("sensor", "inside", "Shoppers inside", value_template="{{ value_json.inside }}", state_class="measurement")
    add("sensor", "alarms", "Open alarms", value_template="{{ value_json.open_alarms }}", icon="mdi:alarm-light")
    add("sensor", "charges_pending", "Charges pending", value_template="{{ value_json.charges_pending }}")
    add("binary_sensor", "gateway", "Wallet gateway", device_class="connectivity",
        value_template="{{ 'ON' if value_json.gateway_up else 'OFF' }}")
    add("sensor", "restock", "Products to restock", value_template="{{ value_json.restock | length }}",
        icon="mdi:package-variant", state_class="measurement")
    add("sensor", "expired_lots", "Expired lots on the shelves", value_template="{{ value_json.expired_lots }}",
        icon="mdi:calendar-alert", state_class="measurement")
    for sku in ((view.get("stock_alerts") or {}).get("products") or [])[:100]:  # (the catalog's, each a sensor)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", sku):
            continue  # (a SKU that would have to be quoted inside a template: no sensor rather than an injection)
        key = "stock_" + "".join(ch if ch.isalnum() else "_" for ch in sku)
        add("sensor", key, f"Stock {sku}", value_template=f"{{{{ value_json.stock.get('{sku}', 0) }}}}",
            unit_of_measurement="items", state_class="measurement", icon="mdi:package-variant-closed")
    for door in sorted(n for n, d in (view.get("devices") or {}).items() if d.get("kind") == "door"):
        key = "door_" + "".join(ch if ch.isalnum() else "_" for ch in door)
        add("binary_sensor", key, f"Door {door}", device_class="door",
            value_template=f"{{{{ 'ON' if value_json.doors['{door}'].open else 'OFF' }}}}")
    if lockdown_switch:
        add("switch", "lockdown", "Lockdown", command_topic=topic(prefix, store_id, "ha", "lockdown", "set"),
            value_template="{{ 'ON' if value_json.state == 'lockdown' else 'OFF' }}", icon="mdi:lock")
    own = topic(prefix, store_id, "")
    for payload in out.values():
        for key, value in payload.items():
            if key.endswith("_topic") and not value.startswith(own):
                raise ValueError(f"discovery: {key} {value!r} is not under {own!r}")
    return out
