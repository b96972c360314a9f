"""A terminal process for the charging fault test: submits N visits' charges to its outbox (skipping those its
journal already has) and runs the sender until every visit's charge has succeeded. It may be SIGKILLed at any
moment and started again on the same journal."""

import argparse
import json
import logging
import sys
import time

from bingobox.journal import Journal
from bingobox.wallet.client import WalletClient
from bingobox.wallet.outbox import Limits, Outbox, Policy


def amount_for(i: int) -> int:
    return 100 + (i * 37) % 900


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--journal", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--visits-of", required=True, help="JSON list: each visit's [account id, entry code id]")
    p.add_argument("--visits", type=int, required=True)
    p.add_argument("--rate", type=float, default=40.0, help="new visits per second")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    visits = json.loads(args.visits_of)
    journal = Journal(args.journal)
    client = WalletClient(args.gateway, args.store, args.secret, connect_timeout=0.5, read_timeout=1.0)
    outbox = Outbox(journal, client, Limits(max_pending_count=100_000, max_pending_fen=10**9),
                    Policy(retry_base_s=0.05, retry_max_s=0.5, poll_interval_s=0.2, paying_window_s=2.0,
                           debt_retry_s=0))
    outbox.start()
    for i in range(args.visits):
        vid = f"visit-{i:04d}"
        if outbox.visit_state(vid) is None:
            account, jti = visits[i]
            outbox.submit(vid, account, amount_for(i),
                          [{"sku": f"sku-{i}", "name": f"item {i}", "qty": 1, "unit_fen": amount_for(i),
                            "amount_fen": amount_for(i)}], entry_jti=jti)
            time.sleep(1 / args.rate)
    print("submitted", flush=True)
    while True:
        n = journal.one("SELECT COUNT(*) n FROM charge_intents WHERE state='succeeded'")["n"]
        print(f"succeeded {n}/{args.visits} {json.dumps(outbox.exposure())}", flush=True)
        if n >= args.visits:
            break
        time.sleep(0.5)
    outbox.stop()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
