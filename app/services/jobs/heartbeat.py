"""A running page's heartbeat: proof, every few seconds, that its worker is alive.

While a page's work runs, a thread renews the page's heartbeat in Redis. When a worker dies
(the whole machine, or SIGKILL of the worker and its pool), its heartbeats stop, and the
watchdog gives its pages back to be sent again within JOB_HEARTBEAT_SECONDS x STALE_BEATS,
rather than after the broker's visibility timeout (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from app.job_tracking import JobRecord, JobTracker

log = logging.getLogger(__name__)

#: A page whose heartbeat is this many intervals old is lost: its worker is gone (a busy
#: machine may delay one beat, hardly four).
STALE_BEATS = 4


def stale_after(interval: float) -> float:
    return interval * STALE_BEATS


@contextlib.contextmanager
def heartbeat(
    jobs: JobTracker, record: JobRecord, position: int, worker: str, interval: float
) -> Iterator[None]:
    """Renew `worker`'s heartbeat on the page every `interval` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not jobs.heartbeat(record, [position], worker):
                    return  # the page was given to another worker, or finished
            except Exception:  # noqa: BLE001 -- a missed beat must not end the page's work
                log.warning("job %s page %d: heartbeat failed", record.task_id, position)

    thread = threading.Thread(target=beat, name=f"heartbeat-{position}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval)
