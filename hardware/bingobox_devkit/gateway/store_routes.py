"""Signed terminal endpoints for the shopper's side (the store box calls out; nothing calls in):

    PUT  /v1/visits/{visit_id}                   the store's record of a visit (at entry, at each change, at the end)
    PUT  /v1/visits/{visit_id}/basket            what the store attributes to the shopper now (while inside)
    GET  /v1/inbox                               open disputes, data requests, face consents withdrawn lately
    POST /v1/disputes/{id}/resolution            an operator's decision (accepted: after the refund with key
                                                 ``dispute-<id>``)
    POST /v1/data-requests/{id}/answer           what the store holds about an account, or what it erased
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from . import shopper_db as sdb

ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VisitReportIn(_Strict):
    account_id: ID
    state: str = Field(min_length=1, max_length=32)
    final: bool
    updated_at: float = Field(ge=0, allow_inf_nan=False)
    jtis: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)
    record: dict[str, Any]


class LineIn(_Strict):
    sku: ID
    name: str = Field(min_length=1, max_length=100)
    qty: int = Field(ge=1, le=10_000)
    unit_fen: int = Field(ge=0, le=10**9)
    amount_fen: int = Field(ge=0, le=10**12)


class LiveBasketIn(_Strict):
    account_id: ID
    lines: list[LineIn] = Field(max_length=500)
    total_fen: int = Field(ge=0, le=10**12)
    certain: bool
    why: list[Literal["others_inside", "takes_unattributed", "shelf_blind"]] = Field(max_length=3)
    at: float = Field(ge=0, allow_inf_nan=False)


class ResolutionIn(_Strict):
    decision: Literal["accepted", "rejected"]
    reason: str = Field(min_length=1, max_length=200)
    operator: str = Field(min_length=1, max_length=32)
    refund_id: ID | None = None


class AnswerIn(_Strict):
    answer: dict[str, Any]


def add_store_routes(app: FastAPI, db, terminal, api_error: type[Exception]) -> None:
    """``terminal``: the signature-checking dependency (returns the store id); ``api_error(status, code, msg)``."""

    def refused(e: sdb.Refused) -> Exception:
        return api_error(e.status, e.code, str(e))

    @app.put("/v1/visits/{visit_id}", tags=["terminal"], responses={410: {}})
    def put_visit(visit_id: ID, body: VisitReportIn, store_id: str = Depends(terminal)):
        """Keep the store's record of a visit: the shopper's receipt shows it (items, which reader saw each, how
        they were identified at the exit). Newer ``updated_at`` wins (a time ahead of the gateway's is taken as
        now); ``jtis`` name the codes of the visit — issued to this account for this store, or 403 — and are
        marked used."""
        try:
            kept = sdb.save_report(db, store_id, visit_id, body.account_id, body.state, body.final, body.record,
                                   body.updated_at, body.jtis)
        except sdb.Refused as e:
            raise refused(e) from None
        if not kept:
            raise api_error(410, "account_gone", "no such account, or it was erased: do not send its visits")
        return {"ok": True}

    @app.put("/v1/visits/{visit_id}/basket", tags=["terminal"], responses={404: {}, 409: {}, 422: {}})
    def put_basket(visit_id: ID, body: LiveBasketIn, store_id: str = Depends(terminal)):
        """What the store attributes to the shopper now: the app shows it while they are inside, marked "not
        certain yet" unless ``certain``. The visit must have been reported (404 until then), be this account's
        and still open (409); lines must add up to the total (422)."""
        if sum(li.amount_fen for li in body.lines) != body.total_fen or \
                any(li.amount_fen != li.qty * li.unit_fen for li in body.lines):
            raise api_error(422, "lines_do_not_add_up", "each line is qty × unit, and the total their sum")
        if body.certain == bool(body.why):
            raise api_error(422, "certainty_unexplained", "a basket is certain exactly when no reason says not")
        try:
            sdb.save_live_basket(db, store_id, visit_id, body.account_id,
                                 body.model_dump(exclude={"account_id"}))
        except sdb.Refused as e:
            raise refused(e) from None
        return {"ok": True}

    @app.get("/v1/inbox", tags=["terminal"])
    def get_inbox(store_id: str = Depends(terminal)):
        return sdb.inbox(db, store_id)

    @app.post("/v1/disputes/{dispute_id}/resolution", tags=["terminal"], responses={404: {}, 409: {}, 422: {}})
    def resolution(dispute_id: ID, body: ResolutionIn, store_id: str = Depends(terminal)):
        try:
            dispute, changed = sdb.resolve_dispute(db, store_id, dispute_id, body.decision, body.reason,
                                                   body.operator, body.refund_id)
        except sdb.Refused as e:
            raise refused(e) from None
        return {**dispute, "replayed": not changed}

    @app.post("/v1/data-requests/{request_id}/answer", tags=["terminal"], responses={404: {}})
    def answer(request_id: ID, body: AnswerIn, store_id: str = Depends(terminal)):
        try:
            first = sdb.answer_request(db, store_id, request_id, body.answer)
        except sdb.Refused as e:
            raise refused(e) from None
        return {"ok": True, "replayed": not first}
