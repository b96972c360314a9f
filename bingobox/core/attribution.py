"""Who carries what: the one owner of everything the store knows, or knows it does not know, about goods leaving the
shelves — the pool of takes nobody could be charged for with certainty, what was just carried out and charged,
strangers inside, the doors left unwatched, the shelves that could not see, and the exit's recent door cycles.

The rules ask it questions (``taker``, ``certain``, ``claimed_elsewhere``) and tell it what happened; they never
hold these sets themselves.

While exactly one shopper is inside, and nobody unknown came in with them, what leaves a shelf goes to their basket
and what comes back leaves it. Otherwise a taken item goes to the pool and the exit reader decides at checkout. A
forced entrance or two faces on one code (a tailgater) makes every shopper inside "not alone" for the rest of their
visit, and nobody who comes in while the stranger may still be inside is alone either. After doors a fire
released, or a controller restart, any number of people may be inside (``unwatched_at``): nobody is alone until
``max_inside_s`` has passed, whoever leaves unidentified meanwhile.
"""

from __future__ import annotations

from typing import Any

from .visits import Visit, VisitBook

SHELF_BLIND_GRACE_S = 10.0  # after a shelf reader comes back, what it reports gone left at an unknown time
UNIDENTIFIED_EXITS_KEPT_S = 300.0


class Attribution:
    def __init__(self, book: VisitBook, shelves: set[str], max_inside_s: float, recent_exit_s: float) -> None:
        self.book = book
        self.shelves = set(shelves)
        self.max_inside_s, self.recent_exit_s = max_inside_s, recent_exit_s
        self.pool: dict[str, float] = {}  # EPC → when it left a shelf with nobody certain to have taken it
        self.recently_left: dict[str, tuple[str, float]] = {}  # EPC → (visit, when) carried out and charged
        self.strangers: list[float] = []  # people inside without a visit, when each was noticed
        self.unwatched_at: float | None = None  # the doors were open to anyone (a fire, the controller down)
        self.shelf_offline: dict[str, float] = {}  # shelf readers that cannot see, since when
        self.shelf_back_at: dict[str, float] = {}  # … and when each last came back
        self.exit_closed_at = 0.0  # the exit door last closed: the exit window never reaches back before it
        self.unidentified_exits: list[float] = []  # exit door openings nobody was granted for

    # what the rules ask ------------------------------------------------------------------------------------
    def unknown_inside(self) -> bool:
        """May someone without a visit be inside (so that nobody's takes are theirs with certainty)?"""
        return bool(self.strangers) or self.unwatched_at is not None

    def blind_since(self, t: float) -> bool:
        """Was any shelf reader unable to see at some time since ``t`` (or shortly before it came back)?"""
        return bool(self.shelf_offline) or any(back + SHELF_BLIND_GRACE_S > t for back in self.shelf_back_at.values())

    def shelf_blind(self, shelf: str, t: float) -> bool:
        """Did this shelf report at ``t`` what left it at an unknown time (it could not see, or just came back)?"""
        return shelf in self.shelf_offline or t < self.shelf_back_at.get(shelf, -1.0) + SHELF_BLIND_GRACE_S

    def taker(self, shelf: str, t: float) -> Visit | None:
        """The shopper whose take from ``shelf`` at ``t`` this certainly is (alone inside, the shelf seeing)."""
        inside = self.book.inside()
        if len(inside) == 1 and inside[0].alone and not self.shelf_blind(shelf, t):
            return inside[0]
        return None

    def certain(self, v: Visit) -> bool:
        """Is ``v``'s basket all they carry, without the exit reader's word (nothing in the pool, alone, no shelf
        blind since they came in)?"""
        return not self.pool and v.alone and not self.blind_since(v.entered_at or v.created_at)

    def claimed_elsewhere(self, v: Visit) -> set[str]:
        """EPCs that are not ``v``'s to be charged for: in another open basket, or just carried out and charged."""
        return {e for o in self.book if o is not v for e in o.basket.items} | set(self.recently_left)

    def exit_window_start(self, v: Visit, frame_t: float, exit_window_s: float) -> float:
        """Where the exit reader's window for ``v`` starts: a few seconds before the frame, never before the exit
        last closed behind someone else, nor before ``v`` came in."""
        return max(frame_t - exit_window_s, self.exit_closed_at, v.entered_at or v.created_at)

    def left_unidentified_between(self, t0: float, t1: float) -> float | None:
        """The first exit door opening nobody was granted for in (t0, t1]."""
        return next((t for t in self.unidentified_exits if t0 < t <= t1), None)

    # what the rules tell it ---------------------------------------------------------------------------------
    def took(self, epc: str, t: float) -> None:
        self.pool[epc] = t

    def put_back(self, epc: str) -> None:
        self.pool.pop(epc, None)
        self.recently_left.pop(epc, None)

    def settled(self, epcs: list[str]) -> None:
        """These left the pool: the exit reader put them in someone's basket."""
        for e in epcs:
            self.pool.pop(e, None)

    def carried_out(self, v: Visit, t: float) -> None:
        for epc in v.basket.items:
            self.recently_left[epc] = (v.id, t)

    def restocked(self) -> None:
        """The shelves as they are now are the new baseline (after maintenance)."""
        self.pool.clear()

    def shelf_link(self, shelf: str, up: bool, t: float) -> None:
        if shelf not in self.shelves:
            return
        if up:
            if self.shelf_offline.pop(shelf, None) is not None:
                self.shelf_back_at[shelf] = t
        else:
            self.shelf_offline.setdefault(shelf, t)
            for v in self.book.inside():  # what they take now is not seen leaving the shelf
                v.alone = False

    def exit_closed(self, t: float) -> None:
        self.exit_closed_at = t

    def unidentified_exit(self, t: float) -> None:
        """The exit opened for nobody (the button, or someone behind a shopper): most likely a stranger out."""
        self.unidentified_exits.append(t)
        if self.strangers:
            self.strangers.pop(0)

    def stranger_inside(self, t: float, flag: str, visit: Visit | None = None, uncounted: bool = False) -> None:
        """Someone without a visit came in (``uncounted``: any number of people may have, e.g. through doors a fire
        released): every shopper inside stops being "alone"; what was attributed to ``visit`` (the one they came in
        with) since its entry goes back to the pool. ``visit`` is flagged ``flag`` (an operator looks: their code let
        someone in); so is everyone inside when nobody knows how many came in. The others are flagged
        ``stranger_inside``: it is for their checkout to say whether the stranger was still inside then
        (``stranger_at_exit``, reviewed) or had gone (their exit was as certain as any other)."""
        if uncounted:
            self.unwatched_at = t
        else:
            self.strangers.append(t)
        inside = [v for v in self.book.inside() if v is not visit] + ([visit] if visit is not None else [])
        if not inside:
            return

        def flag_of(v: Visit) -> str:
            return flag if uncounted or v is visit else "stranger_inside"
        with self.book.commit(inside, [(v, "flag", {"flag": flag_of(v)}) for v in inside
                                       if flag_of(v) not in v.flags]):
            for v in inside:
                v.flag(flag_of(v))
                v.alone = False
            if visit is not None:
                for epc, how in list(visit.basket.items.items()):
                    if how.startswith("shelf:"):
                        visit.basket.remove(epc)
                        self.pool[epc] = t

    def restarted(self, now: float, unwatched: bool, recent: dict[str, tuple[str, float]]) -> None:
        """After a restart: nobody watched the doors (``unwatched``: a store that ever let anyone in), what was just
        carried out is ``recent``, and what the exit reader read before is nobody's."""
        if unwatched:
            self.unwatched_at = now
        self.recently_left.update(recent)
        self.exit_closed_at = now

    def prune(self, now: float) -> None:
        cutoff = now - self.recent_exit_s
        for epc in [e for e, (_, t) in self.recently_left.items() if t < cutoff]:
            del self.recently_left[epc]
        self.unidentified_exits = [t for t in self.unidentified_exits if t > now - UNIDENTIFIED_EXITS_KEPT_S]
        self.strangers = [t for t in self.strangers if t > now - self.max_inside_s]
        if self.unwatched_at is not None and self.unwatched_at <= now - self.max_inside_s:
            self.unwatched_at = None

    def status(self) -> dict[str, Any]:
        return {"unattributed_items": len(self.pool), "strangers": len(self.strangers),
                "unwatched": self.unwatched_at is not None, "blind_shelves": sorted(self.shelf_offline)}
