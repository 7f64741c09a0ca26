"""A no-op queue worker process for bench_queue: ``python -m bench.queue_worker URL READY_FILE``."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.orm import Session

from oots.settings import QueueSettings
from oots.store import Database
from oots.store.queue import Job, Worker


def noop(session: Session, job: Job) -> None:
    """Does nothing: the benchmark measures the queue's own cost."""


def main() -> None:
    url, ready = sys.argv[1], Path(sys.argv[2])
    settings = QueueSettings(poll_interval_seconds=0.01)
    if len(sys.argv) > 3:
        settings = settings.model_copy(update={"batch_size": int(sys.argv[3])})
    db = Database(url)
    worker = Worker(db, settings, handlers={"noop": noop})
    ready.touch()
    worker.run_forever()
    db.dispose()


if __name__ == "__main__":
    main()
