"""A queue worker process for the crash tests: ``python worker_process.py URL LEASE_SECONDS MARKER_DIR``.

Its one handler, ``ledger``, inserts a row per run into the ``ledger`` table. A job whose payload has
``"stall": true`` writes ``MARKER_DIR/<pid>`` on its first attempt and then hangs (to be SIGKILLed).
SIGTERM stops the worker gracefully.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from oots.settings import QueueSettings
from oots.store import Database
from oots.store.queue import Job, Worker


def main() -> None:
    url, lease, marker_dir = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    logging.basicConfig(level=logging.WARNING, format=f"{os.getpid()} %(levelname)s %(name)s: %(message)s")
    db = Database(url)
    settings = QueueSettings(lease_seconds=lease, poll_interval_seconds=0.05, batch_size=32)
    worker = Worker(db, settings)

    def ledger(session: Session, job: Job) -> None:
        session.execute(text("INSERT INTO ledger (job_id, worker) VALUES (:j, :w)"), {"j": job.id, "w": worker.id})
        if job.payload.get("stall") and job.attempts == 1:
            (marker_dir / str(os.getpid())).write_text(str(job.id), encoding="utf-8")
            time.sleep(3600)

    worker.register("ledger", ledger)
    (marker_dir / f"ready-{os.getpid()}").touch()
    worker.run_forever()
    db.dispose()


if __name__ == "__main__":
    main()
