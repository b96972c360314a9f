"""After a restart: each open visit's state is decided from its journal record and what the world may have done
while nobody was watching, never just taken from the last saved row.

- Let in but not seen coming in (``door_unlocked``): the grant may have been used while the controller was down.
  Such a visit is *presumed inside* (flag ``entry_not_seen``), never abandoned: whoever is inside can still be
  identified at the exit, and the exit reader decides what they carry out. If they are in fact still outside,
  their next code at the entrance replaces it. The entrance is granted again if its window is still running.
- Seen coming in (``entered``): inside (the door closed, or will, behind them).
- Identified at the exit but no charge intent yet (``at_exit``): back inside (``checkout_interrupted``); they are
  identified again (a restart lost the face templates, so by their code) and the exit window is read afresh.
- Charging or declined: the intent is in the outbox. If the exit was not granted yet it opens on the answer or
  after ``exit_charge_wait_s``; if it was, it is not opened again (nobody may be there): a fresh code from them
  opens it, and the visit closes after ``exit_unseen_close_s``.
- Nobody watched the doors or the shelves meanwhile: someone may have come in without a code, and items taken
  raised no shelf event. So no restored visit is "alone", and after every restart of a store that ever let anyone
  in, even one that found no open visit, people without a visit are presumed inside (``core.unwatched_at``: how
  many is unknown, so an unidentified exit does not end it; ``max_inside_s`` does): takes are not attributed with
  certainty; the exit reader's window is read at every checkout, and never reaches back before the restart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..domain.visit import UNSEEN_ENTRY, S

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


def reconcile(core: StoreCore) -> None:
    now = core.clock()
    visits = core.book.restore()
    if visits:
        with core.book.commit(visits) as tx:
            for v in visits:
                before = str(v.state)
                if v.state in UNSEEN_ENTRY:
                    v.machine.fire("presume_inside")
                    v.flag("entry_not_seen")
                    v.alone = False
                elif v.state == S.entered:
                    v.machine.fire("presume_inside")
                elif v.state == S.at_exit:
                    v.machine.fire("interrupted")
                    v.flag("checkout_interrupted")
                elif v.state in (S.charging, S.declined) and v.exit_granted_at is None:
                    v.exit_deadline = now + core.settings.exit_charge_wait_s
                tx.add(v, "restored", {"was": before, "now": str(v.state),
                                       "exit_granted": v.exit_granted_at is not None})
            for v in visits:  # nobody watched the doors meanwhile: someone may have come in without a code
                v.alone = False
                if v.companions_inside > 0:  # … and a companion may have gone out unseen
                    v.flag("group_unwatched")
        log.info("restored %d open visits from the journal", len(visits))
    # with or without open visits: the doors were unwatched (a fire release, a forced door, the button), so whoever
    # comes in next may not be alone either (two shoppers may have walked in through fire-released doors while the
    # controller was down)
    core.attribution.restarted(now, bool(visits) or core.journal.ever_let_in(),
                               core.journal.recent_baskets(now - core.settings.recent_exit_s))
