"""Entry by NFC card: the one owner of the store's list of bound cards (``domain.cards``), what a tap at a door
means, and the pairing of a new card (a pairing code shown to the entrance camera, then the card tapped).

A tap at the entrance works like a code (``Admission.card``), with the same refusals; at the exit like an exit code
(``Checkout.card``). A card not in the current list, or no current list at all, is refused with what to do. A card
visit is flagged ``card_entry``: its charge is bounded by ``limit_fen`` (``Checkout``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..devices.events import DeviceEvent
from ..domain import panel
from ..domain.cards import PAIR_WINDOW_S, CardEntry, CardList
from .events import CardListIn, CardPaired
from .ports import CardOut

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


class Cards:
    def __init__(self, core: StoreCore, out: CardOut | None = None) -> None:
        self.core = core
        self.out = out  # pairing requests to the gateway (None: no shopper sync, no pairing)
        self.list: CardList | None = None
        self.pairing: tuple[str, float] | None = None  # (code shown at the entrance, until when a tap pairs it)
        self.pair_waiting = False  # a pairing is with the gateway
        self.counts = {"taps": 0, "unknown": 0, "no_list": 0, "pairings": 0, "paired": 0, "pair_refused": 0,
                       "lists": 0}
        core.on(CardListIn, self.list_in)
        core.on(CardPaired, self.paired)
        core.on_device(self.device)
        core.every_tick(self.tick)

    def limit_fen(self) -> int:
        """The most a card visit is charged without an operator: the store's limit, or the gateway's if lower."""
        own = self.core.settings.card_visit_limit_fen
        return own if self.list is None else min(own, self.list.limit_fen)

    def status(self) -> dict[str, Any]:
        lst = self.list
        return {"cards": len(lst.cards) if lst else 0, "list_until": lst.exp if lst else None,
                "list_current": bool(lst and lst.current(self.core.clock())), "limit_fen": self.limit_fen(),
                **self.counts}

    # the list ----------------------------------------------------------------------------------------
    def list_in(self, ev: CardListIn) -> None:
        if self.list is not None and ev.cards.iat < self.list.iat:
            return  # (an older list fetched late never replaces a newer one)
        self.list = ev.cards
        self.counts["lists"] += 1

    # taps --------------------------------------------------------------------------------------------
    def device(self, ev: DeviceEvent) -> None:
        if ev.kind != "card_tapped":
            return
        core, card = self.core, str(ev.data.get("card"))
        role = "entrance" if ev.data.get("door") == core.lay.entry_door else "exit"
        self.counts["taps"] += 1
        now = core.clock()
        if role == "entrance" and self.pairing is not None and now <= self.pairing[1]:
            self._pair(card)
            return
        entry = self._entry(card, now)
        if entry is None:
            why = "card_unknown" if self.list is not None and self.list.current(now) else "card_list_missing"
            if role == "entrance":
                core.admission.refuse(why, "a card tapped at the entrance")
            else:
                core.panels.say("exit", panel.refusal(why))
            return
        if role == "entrance":
            core.admission.card(entry, ev.t)
        else:
            core.checkout.card(entry, ev.t)

    def _entry(self, card: str, now: float) -> CardEntry | None:
        lst = self.list
        if lst is None or not lst.current(now):
            self.counts["no_list"] += 1
            return None
        got = lst.lookup(card)
        if got is None:
            self.counts["unknown"] += 1
        return got

    # pairing -----------------------------------------------------------------------------------------
    def pairing_shown(self, code: str) -> None:
        """A pairing code held to the entrance camera: the next card tapped within ``PAIR_WINDOW_S`` is bound."""
        core = self.core
        if self.out is None:
            core.panels.say("entrance", panel.PanelMessage("cards.pair_unavailable", panel.Cue.REFUSED, {}, 8.0))
            return
        if self.pairing is not None and self.pairing[0] == code:
            return  # (the same code still in front of the camera)
        self.pairing = (code, core.clock() + PAIR_WINDOW_S)
        core.panels.say("entrance", panel.PanelMessage("cards.tap_now", panel.Cue.SHOW_CODE,
                                                       {"seconds": int(PAIR_WINDOW_S)}, PAIR_WINDOW_S))

    def _pair(self, card: str) -> None:
        assert self.pairing is not None and self.out is not None
        code, self.pairing = self.pairing[0], None
        self.counts["pairings"] += 1
        self.pair_waiting = True
        self.core.panels.say("entrance", panel.PanelMessage("cards.pairing", panel.Cue.NONE, {}, 10.0))
        try:
            self.out(code, card)
        except Exception:
            log.exception("pairing")
            self.paired(CardPaired(False, "unavailable"))

    def paired(self, ev: CardPaired) -> None:
        self.pair_waiting = False
        if ev.ok:
            self.counts["paired"] += 1
            msg = panel.PanelMessage("cards.paired", panel.Cue.ACCEPTED, {}, 8.0)
        else:
            self.counts["pair_refused"] += 1
            key = {"pairing_expired": "cards.pair_expired", "card_taken": "cards.pair_taken"}.get(
                ev.reason or "", "cards.pair_failed")
            msg = panel.PanelMessage(key, panel.Cue.REFUSED, {}, 8.0)
        self.core.panels.say("entrance", msg)

    def tick(self, now: float) -> None:
        if self.pairing is not None and now > self.pairing[1]:
            self.pairing = None
