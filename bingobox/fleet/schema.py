"""What the fleet accepts from a store, checked at the edge before anything touches the database (no I/O here).

Every message a store publishes under ``<prefix>/<store_id>/`` is parsed into one of the models below or refused
with a reason; a refused message costs only itself. Times are bounded by the time of reception: a store's clock
ahead of the fleet's cannot date anything in the future (it is taken as received now), and nothing older than
``MAX_AGE_S`` is taken. Sizes are bounded field by field; only validated fields reach the database.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

MAX_PAYLOAD = 64 * 1024  # bytes of one message (the broker example sets max_packet_size a little above)
MAX_AGE_S = 30 * 86_400  # an event queued by a store offline this long is history, not news
FUTURE_SLACK_S = 5.0  # a store's clock this far ahead is noise; beyond it the time is taken as the reception's
STORE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"
Name = Annotated[str, Field(pattern=_NAME)]
Text = Annotated[str, Field(max_length=200)]
Count = Annotated[StrictInt, Field(ge=0, le=1_000_000)]


class _In(BaseModel):
    """A store's payload: fields we do not know are ignored (a newer store may say more), the ones we use are
    checked strictly."""

    model_config = ConfigDict(extra="ignore", strict=True)
    store_id: Name | None = None
    t: float = Field(allow_inf_nan=False)

    @field_validator("t", mode="before")
    @classmethod
    def _number(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError("t must be a number (unix seconds)")
        return float(v)


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    open: StrictBool | None = None
    locked: StrictBool | None = None
    online: StrictBool | None = None
    state: Annotated[str, Field(max_length=32)] | None = None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    kind: Annotated[str, Field(max_length=16)] | None = None
    online: StrictBool = False


class RestockIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    sku: Name
    count: Count
    minimum: Count


class StateIn(_In):
    state: Annotated[str, Field(max_length=32)] | None = None
    what_works: Text | None = None
    open_now: StrictBool | None = None
    problems: list[Text] = Field(default_factory=list, max_length=50)
    inside: Count = 0
    doors: dict[Name, DoorIn] = Field(default_factory=dict, max_length=64)
    devices: dict[Name, DeviceIn] = Field(default_factory=dict, max_length=256)
    charges_pending: Count = 0
    charges_pending_fen: Annotated[StrictInt, Field(ge=0, le=10**12)] = 0
    gateway_up: StrictBool = True
    open_alarms: Count = 0
    reviews_open: Count = 0
    review_rate: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.0
    review_causes: dict[Name, Count] = Field(default_factory=dict, max_length=32)
    restock: list[RestockIn] = Field(default_factory=list, max_length=100)
    off_sale_zones: list[Name] = Field(default_factory=list, max_length=32)


class MetricsIn(_In):
    counts: dict[Annotated[str, Field(max_length=64)], float | int] = Field(default_factory=dict, max_length=200)
    entry_ms: dict[Annotated[str, Field(max_length=16)], float | int | None] | None = Field(None, max_length=16)
    exit_ms: dict[Annotated[str, Field(max_length=16)], float | int | None] | None = Field(None, max_length=16)
    loop_lag_ms: float | int | None = None


class EventIn(_In):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    kind: Name | None = None
    late: StrictBool = False
    data: dict[str, Any] = Field(default_factory=dict)


class AlarmData(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    alarm_id: Annotated[StrictInt, Field(ge=0, le=2**62)] | None = None
    alarm: Name = "alarm"
    device: Annotated[str, Field(max_length=64)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    by: Annotated[str, Field(max_length=64)] | None = None


class ReviewData(BaseModel):
    """A review_opened / review_decided event's data (a visit the store was not sure of; no shopper named)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    visit_id: Name
    causes: list[Name] = Field(default_factory=list, max_length=20)
    decision: Literal["charge", "refund", "close"] | None = None
    evidence: dict[str, Any] | None = None  # (review_opened: the visit's record, bounded by the event's size)


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    tx: Name
    ok: StrictBool | None = None


@dataclass(frozen=True)
class Message:
    """A store's message as the fleet applies it: ``t`` bounded by its reception."""

    store_id: str
    sub: str  # status | state | metrics | event | result
    received_at: float
    t: float = 0.0
    online: bool = False
    body: Any = None  # the validated model
    text: str = ""  # what is stored (validated fields only, JSON)
    kind: str = ""  # an event's kind / a command's name
    clamped: bool = False  # dated in the future: taken as received now


class Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _dumps(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json", exclude_none=False), separators=(",", ":"))


def _time(t: float, received_at: float) -> tuple[float, bool]:
    if t < received_at - MAX_AGE_S:
        raise Refused("too_old", f"dated {received_at - t:.0f} s before its reception")
    if t > received_at + FUTURE_SLACK_S:
        return received_at, True
    return min(t, received_at), False


def _small_json(v: Any, limit: int, what: str) -> None:
    if len(json.dumps(v, separators=(",", ":"), default=str)) > limit:
        raise Refused("too_large", f"{what} over {limit} bytes")


def parse(store_id: str, sub: str, payload: bytes, received_at: float) -> Message:
    """One store message, checked; ``Refused`` says why not."""
    if not STORE_ID.fullmatch(store_id):
        raise Refused("bad_store_id", "a store id is 1..64 of A-Z a-z 0-9 _ . -")
    if len(payload) > MAX_PAYLOAD:
        raise Refused("too_large", f"{len(payload)} bytes (at most {MAX_PAYLOAD})")
    if sub == "status":
        if payload not in (b"online", b"offline"):
            raise Refused("bad_status", "status is online or offline")
        return Message(store_id, "status", received_at, received_at, online=payload == b"online")
    model: type[_In]
    kind = ""
    if sub == "state":
        model = StateIn
    elif sub == "metrics":
        model = MetricsIn
    elif sub.startswith("event/") and re.fullmatch(_NAME, sub[6:]):
        model, kind = EventIn, sub[6:]
    elif sub.startswith("cmd/") and sub.endswith("/result") and re.fullmatch(_NAME, sub[4:-7]):
        try:
            res = ResultIn.model_validate_json(payload)
        except ValidationError as e:
            raise Refused("invalid", _first(e)) from None
        return Message(store_id, "result", received_at, received_at, body=res, text=payload.decode(),
                       kind=sub[4:-7])
    else:
        raise Refused("unknown_topic", sub[:80])
    try:
        body = model.model_validate_json(payload)
    except ValidationError as e:
        raise Refused("invalid", _first(e)) from None
    if body.store_id is not None and body.store_id != store_id:
        raise Refused("store_mismatch", "the payload names another store than its topic")
    t, clamped = _time(body.t, received_at)
    if isinstance(body, EventIn):
        _small_json(body.data, 16 * 1024, "an event's data")
        if kind in ("alarm", "alarm_cleared", "review_opened", "review_decided"):
            try:
                (AlarmData if kind.startswith("alarm") else ReviewData).model_validate(body.data)
            except ValidationError as e:
                raise Refused("invalid", "data." + _first(e)) from None
        return Message(store_id, "event", received_at, t, body=body, kind=kind, clamped=clamped)
    return Message(store_id, sub, received_at, t, body=body, text=_dumps(body), clamped=clamped)


def alarm_data(msg: Message) -> AlarmData:
    return AlarmData.model_validate(msg.body.data)


def review_data(msg: Message) -> ReviewData:
    return ReviewData.model_validate(msg.body.data)


def _first(e: ValidationError) -> str:
    if not e.errors():
        return "invalid"
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}"[:200]


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


Sub = Literal["status", "state", "metrics", "event", "result"]
