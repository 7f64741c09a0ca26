"""One access point as its own process, for the AS4 flow tests: ``python as4_node.py CONFIG PORT``.

The application behind it is a table ``flow_deliveries`` (message id as primary key) that the
delivery hook inserts into inside the delivery job's transaction: a message delivered twice would
break the key and show up as a failed job. ``FLOW_CRASH`` makes the process kill itself with SIGKILL
at a chosen moment: ``before_delivery`` (stored and receipted, the first delivery under way) or
``before_answer`` (stored, the receipt not yet sent). With ``FLOW_CRASH_GATE`` naming a file, the
delivery waits for that file before it kills the process: the delivery job starts as soon as the
message is stored, possibly before the receipt has left, so the test opens the gate once the sender
holds the receipt.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import uvicorn
from sqlalchemy import text
from sqlalchemy.orm import Session

from oots.as4 import msh, service
from oots.as4.store import As4Store
from oots.settings import load_settings
from oots.store import open_database


def main() -> None:
    config, port = Path(sys.argv[1]), int(sys.argv[2])
    crash = os.environ.get("FLOW_CRASH", "")
    settings = load_settings(config)
    db = open_database(settings)
    with db.session(immediate=True) as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS flow_deliveries (message_id TEXT PRIMARY KEY, size INTEGER)"))
    ap = service.load_access_point(settings)
    store = As4Store(db, ap.pmodes, clock=ap.clock)

    gate = os.environ.get("FLOW_CRASH_GATE")

    def deliver(session: Session, message: msh.VerifiedMessage) -> None:
        if crash == "before_delivery":
            for _ in range(1200):  # at most 2 minutes: a test that never opens the gate still ends
                if gate is None or Path(gate).exists():
                    break
                time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGKILL)
        size = sum(len(p.data) for p in message.payloads)
        session.execute(text("INSERT INTO flow_deliveries VALUES (:m, :s)"), {"m": message.message_id, "s": size})

    class CrashingInbox:
        def seen(self, message_id: str) -> msh.PriorReceipt | None:
            return store.seen(message_id)

        def accept(self, record: msh.InboundRecord) -> msh.PriorReceipt | None:
            prior = store.accept(record)
            if prior is not None:
                return prior
            os.kill(os.getpid(), signal.SIGKILL)
            return None

    inbox = CrashingInbox() if crash == "before_answer" else store
    app = service.create_as4_app(ap, inbox)
    loops = service.background(ap, store, deliver, settings.queue)
    loops.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        loops.stop()


if __name__ == "__main__":
    main()
