"""What one OCR'd page costs the shared parts: database statements and transactions, Redis
round trips, and the Redis memory of a running job with its waiting page messages.

    .venv/bin/python -m tests.bench.page_costs [--pages 2000] [--run 50]

A private redis-server (the broker too) and an SQLite app in a temp directory; a 2000-page
project inserted directly. A batch OCR job is started over every page with no worker
running, so its window of page messages waits in the `ocr` list: Redis memory is measured
then (`used_memory` before and after, and MEMORY USAGE of each key the job made). Then --run
of its pages are OCR'd in this process by the page task's own code (`batch_ocr.run_page`) with
a stand-in engine, counting every SQL statement, every commit and every Redis command they
send. These are counts, not times: they do not depend on the machine's load.

docs/scaling.md quotes the figures.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
from pathlib import Path

import redis
from sqlalchemy import event

from app.engines import ENGINES
from app.extensions import db
from app.models import Job
from app.services import batch_ocr
from tests.support import FakeEngine, RedisServer, add_ready_project, make_app

WRITES = ("INSERT", "UPDATE", "DELETE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.page_costs", description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--run", type=int, default=50, help="pages OCR'd and counted")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ocr-page-costs-"))
    server = RedisServer(work / "redis")
    server.start()
    try:
        app = make_app(work, REDIS_URL=server.url)
        ENGINES["fake"] = FakeEngine()
        with app.app_context():
            report(app, args.pages, args.run, server)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(app, pages: int, run: int, server: RedisServer) -> None:
    client = server.client()
    # A first job warms Redis up (scripts loaded, connections made): the second is measured.
    warm = add_ready_project("warm-up", 10)
    batch_ocr.start_batch_ocr(warm, engine="fake", language="eng", selection="all", user=None)
    project = add_ready_project("costs", pages)
    before = client.info("memory")["used_memory"]
    outcome = batch_ocr.start_batch_ocr(
        project, engine="fake", language="eng", selection="all", user=None
    )
    after = client.info("memory")["used_memory"]
    keys = {key.decode(): client.memory_usage(key) or 0 for key in client.keys("*")}
    job_keys = {k: v for k, v in keys.items() if outcome.job_id in k or k == "ocr_task:costs"}
    waiting = client.llen("ocr") - 2  # the warm-up job's window (two pages, no worker) waits too
    print(f"a running {pages}-page job, no worker, its window waiting in the `ocr` list:")
    print(f"  used_memory grew by {after - before:,} bytes")
    print(f"  the job's own keys: {sum(job_keys.values()):,} bytes ({len(job_keys)} keys)")
    for key, size in sorted(job_keys.items()):
        print(f"    {key}: {size:,}")
    print(
        f"  the `ocr` list: {keys.get('ocr', 0):,} bytes for {waiting + 2} waiting page messages"
        f" ({keys.get('ocr', 0) / (waiting + 2):,.0f} bytes each), {waiting} of them this job's"
    )
    print(f"  per page of the job: {(after - before) / pages:.1f} bytes")

    statements: collections.Counter[str] = collections.Counter()
    commits = 0
    redis_commands = 0

    def on_statement(_conn, _cursor, statement, *_args):
        statements[statement.lstrip().split(None, 1)[0].upper()] += 1

    def on_commit(_conn):
        nonlocal commits
        commits += 1

    connection_class = redis.connection.Connection
    original = connection_class.send_command

    def counting(self, *command, **options):
        nonlocal redis_commands
        redis_commands += 1
        return original(self, *command, **options)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    # Every redis-py connection: the job tracking's and the broker's (kombu uses redis-py).
    connection_class.send_command = counting
    try:
        for position in range(run):
            batch_ocr.run_page(outcome.job_id, position, worker="costs@bench")
    finally:
        connection_class.send_command = original
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
    job = db.session.get(Job, outcome.job_id)
    done = sum(1 for page in job.pages if page.state == "done")
    writes = sum(statements[w] for w in WRITES)
    print(f"\n{run} pages OCR'd by run_page ({done} done), per page:")
    print(f"  SQL statements: {sum(statements.values()) / run:.1f} ({writes / run:.1f} writes)")
    for kind, count in statements.most_common():
        print(f"    {kind}: {count / run:.1f}")
    print(f"  transactions committed: {commits / run:.1f}")
    print(f"  Redis commands (pipelines and scripts count once each): {redis_commands / run:.1f}")


if __name__ == "__main__":
    sys.exit(main())
