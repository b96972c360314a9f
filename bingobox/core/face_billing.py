"""Face billing's side of the visits: a consenting shopper's enrolment outcome (two faces on one code: a tailgater),
whom the exit matcher may recognise (the enrolled shoppers inside, and those identified until they are out),
templates forgotten when a visit ends or consent is withdrawn. The templates themselves never leave the face side
(``ports.Faces``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .events import ConsentWithdrawn, Enrolled
from .visits import Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


class FaceBilling:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        core.on(Enrolled, self.enrolled)
        core.on(ConsentWithdrawn, self.consent_withdrawn)
        core.every_tick(lambda _now: self.publish_candidates())  # (who is inside changes in many places)

    def enrol(self, v: Visit) -> None:
        """A consenting shopper was let in: enrol their face (an ``Enrolled`` event follows)."""
        core = self.core
        if v.face_consent and core.faces is not None and core.cfg.vision.faces:
            core.faces.enrol(v.id)

    def enrolled(self, ev: Enrolled) -> None:
        core = self.core
        v = core.book.get(ev.visit_id)
        if v is None:
            return
        r = ev.result
        # more faces than people on the code: a stranger came in with them (a group's own are expected)
        extra = r.get("reason") == "several_faces" and int(r.get("faces") or 2) > v.group
        with core.book.commit([v], [(v, "face_enrolment", {k: r.get(k) for k in ("ok", "reason", "templates",
                                                                                 "face_px", "sharpness", "frames",
                                                                                 "faces")})]):
            v.enrolled = bool(r.get("ok"))
            if extra:
                v.flag("tailgating")
                v.alone = False
        if v.enrolled and not v.face_consent:  # consent withdrawn while the templates were being made
            self.forget(v)
        if extra:  # two people on one code (or more than the group): the extra one is a stranger inside
            core.alarm("tailgating", core.lay.entry_door, {"visit": v.id})
            core.attribution.stranger_inside(core.clock(), "tailgating", v)
        self.publish_candidates()

    def publish_candidates(self) -> None:
        """Tell the exit matcher whom it may recognise: the enrolled shoppers inside, and those identified at the exit
        who are not out yet. The face in front of the exit camera is still theirs until they are through the door:
        compared only with the others, it could pass the rule for a look-alike among them, who would be taken to
        be leaving (a crowd demo did that once, with 33 inside). A match of someone leaving changes nothing.

        With them goes how many people inside or leaving are not candidates: shoppers without consent or whose
        enrolment failed, companions, strangers (one at least when the doors were open to anyone). The face at the
        exit may be one of theirs, and a look-alike of theirs among the candidates must not be taken for them: the
        matcher is stricter then (``faces.decide``, the open set)."""
        core = self.core
        if core.faces is None:
            return
        here = [v for v in core.book if v.inside or v.leaving]
        others = sum((0 if v.enrolled else 1) + v.companions_inside for v in here)
        others += len(core.attribution.strangers) + (core.attribution.unwatched_at is not None)
        core.faces.set_candidates([v.id for v in here if v.enrolled], others)

    def consent_withdrawn(self, ev: ConsentWithdrawn) -> None:
        """The shopper withdrew face-billing consent: their visit in progress forgets their face at once (they scan
        their code at the exit)."""
        for v in [v for v in self.core.book if v.account == ev.account and v.face_consent]:
            with self.core.book.commit([v], [(v, "face_consent_withdrawn", {"templates_dropped": v.enrolled})]):
                v.face_consent = False
            self.forget(v)

    def forget(self, v: Visit) -> None:
        if self.core.faces is not None and v.enrolled:
            try:
                self.core.faces.forget(v.id)
            except Exception as e:  # a dead worker has lost every template anyway
                log.warning("could not forget the templates of %s: %s", v.id, e)
            v.enrolled = False
        self.publish_candidates()
