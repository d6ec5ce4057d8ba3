"""The Redis record of jobs (app/job_tracking.py) against fakeredis, Lua scripts included:
claim, the window of pages sent, heartbeats, finishing, cancel and end."""

from __future__ import annotations

import json
import time
import uuid

import fakeredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.job_tracking import (
    ENDED_JOB_KEYS_TTL,
    STATE_CODES,
    TRACKED,
    CorruptRecord,
    JobRecord,
    JobTracker,
    decode_page_states,
    job_key,
)
from app.models import ItemState, JobKind

KEYS = TRACKED[JobKind.OCR]
pages_key, progress_key, errors_key = KEYS.pages_key, KEYS.progress_key, KEYS.errors_key
running_key, sending_key = KEYS.running_key, KEYS.sending_key

TTL = 3600
HYPOTHESIS = settings(max_examples=50, deadline=None)


def make_record(slug: str = "book", total: int = 3, **fields) -> JobRecord:
    return JobRecord(
        task_id=fields.pop("task_id", str(uuid.uuid4())),
        engine=fields.pop("engine", "tesseract"),
        started_at=fields.pop("started_at", "2024-01-02T03:04:05+00:00"),
        project_slug=slug,
        language=fields.pop("language", "eng"),
        total=total,
    )


@pytest.fixture
def client():
    return fakeredis.FakeRedis()


@pytest.fixture
def tracker(client):
    return JobTracker(client, JobKind.OCR, ttl=TTL)


def states(client, record: JobRecord) -> bytes:
    return client.get(pages_key(record.task_id))


def counters(client, record: JobRecord) -> dict[str, int]:
    raw = client.hgetall(progress_key(record.task_id))
    return {
        key.decode(): int(value)
        for key, value in raw.items()
        if key not in (b"first_started", b"last_progress", b"inflight")
    }


# -- claim -------------------------------------------------------------------------------


def test_claim_writes_record_page_states_and_counters_with_ttls(client, tracker):
    """A claim writes the record, one 'w' (waiting) per page and zeroed counters, each with
    the TTL; pages of a job started with its upload start 'p' (being prepared)."""
    record = make_record(total=5)
    assert tracker.claim(record) is None

    assert client.get(job_key("book")) == record.to_json().encode()
    assert states(client, record) == b"w" * 5
    preparing = make_record(slug="fresh-upload", total=3)
    assert tracker.claim(preparing, preparing=True) is None
    assert states(client, preparing) == b"ppp"
    assert counters(client, record) == {
        "total": 5,
        "finished": 0,
        "done": 0,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }
    assert client.hget(progress_key(record.task_id), "last_progress") is not None
    for key in (job_key("book"), pages_key(record.task_id), progress_key(record.task_id)):
        assert 0 < client.ttl(key) <= TTL, key


def test_second_claim_returns_first_record_and_writes_nothing(client, tracker):
    """A second claim on the same slug returns the first job and creates none of its keys."""
    first = make_record(total=2)
    second = make_record(total=7)
    tracker.claim(first)

    assert tracker.claim(second) == first
    assert client.get(job_key("book")) == first.to_json().encode()
    assert not client.exists(pages_key(second.task_id), progress_key(second.task_id))


def test_record_json_names_task_engine_start_and_project(client, tracker):
    """The stored JSON carries task_id, engine, started_at and project_slug."""
    record = make_record(slug="gita-1942", engine="google")
    tracker.claim(record)

    data = json.loads(client.get(job_key("gita-1942")))
    assert {k: data[k] for k in ("task_id", "engine", "started_at", "project_slug")} == {
        "task_id": record.task_id,
        "engine": "google",
        "started_at": record.started_at,
        "project_slug": "gita-1942",
    }


def test_claim_replaces_a_corrupt_record(client, tracker):
    """A claim over an unreadable record succeeds and stores the new record."""
    client.set(job_key("book"), b"{not json")
    record = make_record()

    assert tracker.claim(record) is None
    assert client.get(job_key("book")) == record.to_json().encode()
    assert states(client, record) == b"www"


# -- mark_running ------------------------------------------------------------------------


def test_mark_running_moves_a_waiting_page_to_running_only(client, tracker):
    """mark_running turns the page alone into 'r' under its worker's name and notes the first
    start once; the same worker may run it again (a redelivered task)."""
    record = make_record(total=3)
    tracker.claim(record)

    assert tracker.mark_running(record, 1, "host-a:1")
    assert states(client, record) == b"wrw"
    first_started = client.hget(progress_key(record.task_id), "first_started")
    assert first_started is not None
    assert [(p.position, p.worker) for p in tracker.running_pages(record)] == [(1, "host-a:1")]

    assert tracker.mark_running(record, 1, "host-a:1")
    assert states(client, record) == b"wrw"
    assert client.hget(progress_key(record.task_id), "first_started") == first_started


def test_mark_running_refuses_finished_and_cancelled_pages(client, tracker):
    """A finished or cancelled page is not run again, and keeps its state."""
    record = make_record(total=3)
    tracker.claim(record)
    tracker.finish_page(record, 0, "done")
    tracker.finish_page(record, 1, "failed", "unreadable")
    tracker.cancel(record)

    assert [tracker.mark_running(record, p) for p in range(3)] == [False, False, False]
    assert states(client, record) == b"dfc"


# -- finish_page -------------------------------------------------------------------------


def test_finish_page_counts_a_page_once(client, tracker):
    """A second finish of the same page, whatever its outcome, changes no counter or state."""
    record = make_record(total=3)
    tracker.claim(record)

    first = tracker.finish_page(record, 0, "done")
    before = counters(client, record)
    again = tracker.finish_page(record, 0, "failed", "late duplicate")

    assert (first.counted, again.counted, again.last) == (True, False, False)
    assert counters(client, record) == before
    assert before["finished"] == 1 and before["done"] == 1 and before["failed"] == 0
    assert states(client, record) == b"dww"
    assert not client.hexists(errors_key(record.task_id), 0)


def test_only_the_finish_of_the_last_distinct_page_is_last(tracker):
    """Of many finishes, duplicates included, only the one completing every page is last."""
    record = make_record(total=4)
    tracker.claim(record)
    order = [2, 0, 0, 3, 2, 1, 1, 3]

    lasts = [tracker.finish_page(record, p, "done").last for p in order]

    assert lasts == [False, False, False, False, False, True, False, False]


def test_failed_and_skipped_pages_keep_their_reason(client, tracker):
    """A reason is stored per position, for failed and skipped pages only."""
    record = make_record(total=3)
    tracker.claim(record)
    tracker.finish_page(record, 0, "failed", "Tesseract could not read the page")
    tracker.finish_page(record, 1, "skipped", "edited by a person")
    tracker.finish_page(record, 2, "done")

    progress = tracker.progress_of(tracker.current("book"))
    assert progress.errors == {0: "Tesseract could not read the page", 1: "edited by a person"}
    assert progress.page_states == ["failed", "skipped", "done"]
    assert (progress.counts["failed"], progress.counts["skipped"], progress.counts["done"]) == (
        1,
        1,
        1,
    )


def test_progress_renews_the_ttl_of_every_key(client, tracker):
    """A finished page sets the TTL of the record and the per-job keys back to the full TTL."""
    record = make_record(total=3)
    tracker.claim(record)
    keys = [job_key("book"), pages_key(record.task_id), progress_key(record.task_id)]
    for key in keys:
        client.expire(key, 30)

    tracker.finish_page(record, 0, "failed", "a reason")

    for key in [*keys, errors_key(record.task_id)]:
        assert client.ttl(key) > 30, key


# -- cancel ------------------------------------------------------------------------------


def test_cancel_cancels_pages_not_running_and_leaves_running_ones(client, tracker):
    """Pages waiting, sent or being prepared become cancelled and count as finished; running
    pages run on."""
    record = make_record(total=5)
    tracker.claim(record)
    assert tracker.take(record, 2) == [0, 1]
    tracker.mark_running(record, 0, "host-a:1")
    tracker.finish_page(record, 2, "done")

    assert tracker.cancel(record) == 3

    assert states(client, record) == b"rcdcc"
    assert int(client.hget(progress_key(record.task_id), "inflight")) == 1
    assert counters(client, record)["cancelled"] == 3
    assert counters(client, record)["finished"] == 4
    assert client.get(job_key("book")) is None


def test_the_running_page_finishing_after_cancel_is_last(tracker):
    """After a cancel, the page that was running is the one that learns it was last."""
    record = make_record(total=3)
    tracker.claim(record)
    tracker.mark_running(record, 0)
    tracker.cancel(record)

    finish = tracker.finish_page(record, 0, "done")

    assert (finish.counted, finish.last) == (True, True)


def test_cancel_keeps_a_record_naming_another_task(client, tracker):
    """Cancel deletes the slug's record only if it names the cancelled task."""
    old = make_record(total=2)
    tracker.claim(old)
    client.delete(job_key("book"))
    new = make_record(total=2)
    tracker.claim(new)

    assert tracker.cancel(old) == 2

    assert client.get(job_key("book")) == new.to_json().encode()
    assert states(client, new) == b"ww"


# -- end ---------------------------------------------------------------------------------


def test_end_deletes_the_record_and_shortens_the_job_keys_ttl(client, tracker):
    """end() deletes its own record and leaves the per-job keys for ENDED_JOB_KEYS_TTL."""
    record = make_record(total=2)
    tracker.claim(record)
    tracker.finish_page(record, 0, "failed", "unreadable")

    assert tracker.end(record) is True

    assert client.get(job_key("book")) is None
    for key in (
        pages_key(record.task_id),
        progress_key(record.task_id),
        errors_key(record.task_id),
    ):
        assert 0 < client.ttl(key) <= ENDED_JOB_KEYS_TTL, key


def test_end_of_an_old_job_keeps_a_newer_jobs_record(client, tracker):
    """A late end() of an old job never deletes the record of the job now running."""
    old = make_record(total=2)
    tracker.claim(old)
    tracker.end(old)
    new = make_record(total=2)
    assert tracker.claim(new) is None

    assert tracker.end(old) is False

    assert client.get(job_key("book")) == new.to_json().encode()
    assert client.ttl(pages_key(new.task_id)) > ENDED_JOB_KEYS_TTL


# -- current and progress ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe\xfa",
        b"[1, 2]",
        b'"a string"',
        json.dumps({"task_id": "t", "engine": "tesseract", "started_at": "s"}).encode(),
        json.dumps(
            {"task_id": "", "engine": "tesseract", "started_at": "s", "project_slug": "book"}
        ).encode(),
        json.dumps(
            {"task_id": "t", "engine": "e", "started_at": "s", "project_slug": "b", "total": -1}
        ).encode(),
        json.dumps(
            {"task_id": "t", "engine": "e", "started_at": "s", "project_slug": "b", "total": True}
        ).encode(),
        json.dumps(
            {"task_id": "t", "engine": "e", "started_at": "s", "project_slug": "b", "language": 3}
        ).encode(),
    ],
)
def test_current_deletes_a_corrupt_record(client, tracker, raw):
    """An unreadable record reads as no job and is deleted."""
    client.set(job_key("book"), raw)

    assert tracker.current("book") is None
    assert client.get(job_key("book")) is None


def test_current_keeps_a_record_written_after_the_corrupt_one_was_read(client, tracker):
    """Only the corrupt value is deleted: a record written meanwhile survives."""
    client.set(job_key("book"), b"garbage")
    fresh = make_record()
    read = client.get

    def get_then_overwrite(key):
        raw = read(key)
        client.set(job_key("book"), fresh.to_json())
        return raw

    tracker.redis.get = get_then_overwrite

    assert tracker.current("book") is None
    assert read(job_key("book")) == fresh.to_json().encode()


def test_current_deletes_a_deeply_nested_record(client, tracker):
    """A record of deeply nested JSON is corrupt like any other: deleted, read as no job."""
    client.set(job_key("book"), b"[" * 100_000)

    assert tracker.current("book") is None
    assert client.get(job_key("book")) is None


# -- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.text(min_size=1)
        for name in (
            "task_id",
            "engine",
            "started_at",
            "project_slug",
            "language",
            "total",
            "format",
        )
    },
)
stored_values = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(json.dumps),
    record_like.map(json.dumps),
    record_like.map(lambda d: json.dumps(d).encode("utf-16")),
)


@HYPOTHESIS
@given(raw=stored_values)
def test_from_json_returns_a_record_or_raises_corrupt_record(raw):
    """Whatever is stored, from_json gives a JobRecord or CorruptRecord, never another error."""
    try:
        record = JobRecord.from_json(raw)
    except CorruptRecord:
        return
    assert isinstance(record, JobRecord)
    assert all(
        isinstance(v, str) and v for v in (record.task_id, record.started_at, record.project_slug)
    )
    assert isinstance(record.total, int) and record.total >= 0


valid_records = st.builds(
    JobRecord,
    task_id=st.text(min_size=1),
    engine=st.text(),
    format=st.text(),
    started_at=st.text(min_size=1),
    project_slug=st.text(min_size=1),
    language=st.text(),
    total=st.integers(min_value=0, max_value=10**9),
)


@HYPOTHESIS
@given(record=valid_records, as_bytes=st.booleans())
def test_to_json_and_from_json_round_trip(record, as_bytes):
    """A record read back from its own JSON (text or UTF-8 bytes) equals the original."""
    raw = record.to_json()
    assert JobRecord.from_json(raw.encode() if as_bytes else raw) == record


@HYPOTHESIS
@given(raw=st.binary(max_size=300), total=st.integers(min_value=0, max_value=400))
def test_decode_page_states_gives_exactly_total_known_states(raw, total):
    """Any state string decodes to `total` known states; missing bytes read as queued."""
    decoded = decode_page_states(raw, total)

    assert len(decoded) == total
    assert set(decoded) <= set(STATE_CODES.values())
    assert decoded[len(raw) :] == [ItemState.QUEUED] * max(0, total - len(raw))


@st.composite
def interleavings(draw):
    """Page count, then operations on pages: runs and finishes, duplicates included, with
    every page finished at least once, in a random order."""
    total = draw(st.integers(min_value=1, max_value=8))
    positions = st.integers(min_value=0, max_value=total - 1)
    outcomes = st.sampled_from(["done", "failed", "skipped"])
    ops = draw(
        st.lists(st.tuples(st.sampled_from(["run", "finish"]), positions, outcomes), max_size=30)
    )
    closing = draw(st.permutations(range(total)))
    ops += [("finish", p, draw(outcomes)) for p in closing]
    return total, draw(st.permutations(ops))


@HYPOTHESIS
@given(case=interleavings())
def test_any_interleaving_counts_distinct_pages_and_is_last_once(case):
    """Counters equal the distinct pages finished (first outcome wins) and one call is last."""
    total, ops = case
    client = fakeredis.FakeRedis()
    tracker = JobTracker(client, JobKind.OCR, ttl=TTL)
    record = make_record(total=total)
    tracker.claim(record)
    first_outcome: dict[int, str] = {}
    lasts = 0

    for op, position, outcome in ops:
        if op == "run":
            started = tracker.mark_running(record, position, "host-a:1")
            assert started == (position not in first_outcome)
            continue
        finish = tracker.finish_page(record, position, outcome, "why" if outcome != "done" else "")
        assert finish.counted == (position not in first_outcome)
        first_outcome.setdefault(position, outcome)
        lasts += finish.last
        if finish.last:
            assert len(first_outcome) == total

    assert lasts == 1
    found = counters(client, record)
    assert found["finished"] == len(first_outcome) == total
    for outcome in ("done", "failed", "skipped"):
        assert found[outcome] == list(first_outcome.values()).count(outcome)
    codes = {"done": "d", "failed": "f", "skipped": "s"}
    assert states(client, record).decode() == "".join(codes[first_outcome[p]] for p in range(total))


# -- the window of pages sent, heartbeats, lost pages --------------------------------------


def inflight(client, record: JobRecord) -> int:
    return int(client.hget(progress_key(record.task_id), "inflight"))


def test_take_sends_waiting_pages_until_the_window_is_full(client, tracker):
    """take() moves waiting pages to queued, in order, until `window` are queued or running,
    and notes them as being sent until confirm_sent()."""
    record = make_record(total=6)
    tracker.claim(record)

    assert tracker.take(record, 3) == [0, 1, 2]
    assert tracker.take(record, 3) == []  # the window is full
    assert states(client, record) == b"qqqwww"
    assert sorted(int(p) for p in client.hkeys(sending_key(record.task_id))) == [0, 1, 2]
    tracker.confirm_sent(record, [0, 1, 2])
    assert client.hlen(sending_key(record.task_id)) == 0

    tracker.mark_running(record, 0, "host-a:1")
    tracker.finish_page(record, 0, "done")
    assert tracker.take(record, 3) == [3]
    assert (states(client, record), inflight(client, record)) == (b"dqqqww", 3)


def test_pages_being_prepared_are_sent_only_once_ready(client, tracker):
    """A page of a fresh upload is sent only after make_ready(); making it ready twice is one."""
    record = make_record(total=3)
    tracker.claim(record, preparing=True)
    assert tracker.take(record, 4) == []

    assert tracker.make_ready(record, [1]) == 1
    assert tracker.make_ready(record, [1]) == 0
    assert tracker.take(record, 4) == [1]
    assert states(client, record) == b"pqp"


def test_a_duplicate_message_does_not_run_a_page_another_worker_runs(client, tracker):
    """While its worker beats, a page is not run by a second message; once the heartbeat is
    stale, another worker takes it over."""
    record = make_record(total=2)
    tracker.claim(record)
    assert tracker.mark_running(record, 0, "host-a:1", stale_after=30)

    assert tracker.mark_running(record, 0, "host-b:7", stale_after=30) is False
    assert tracker.heartbeat(record, [0], "host-a:1") == 1
    assert tracker.heartbeat(record, [0], "host-b:7") == 0  # not its page

    client.hset(running_key(record.task_id), 0, f"host-a:1|{time.time() - 31}")
    assert tracker.mark_running(record, 0, "host-b:7", stale_after=30)
    assert [(p.position, p.worker) for p in tracker.running_pages(record)] == [(0, "host-b:7")]
    assert inflight(client, record) == 1


def test_release_lost_gives_back_pages_of_silent_workers_and_unconfirmed_sends(client, tracker):
    """A running page whose heartbeat is stale, and a page taken for sending whose send was
    never confirmed, wait again and leave the window; fresh ones stay as they are."""
    record = make_record(total=4)
    tracker.claim(record)
    assert tracker.take(record, 4) == [0, 1, 2, 3]
    tracker.confirm_sent(record, [0, 1])
    tracker.mark_running(record, 0, "dead:1")
    tracker.mark_running(record, 1, "alive:2")
    client.hset(running_key(record.task_id), 0, f"dead:1|{time.time() - 100}")
    client.hset(sending_key(record.task_id), 2, time.time() - 100)  # its sender died

    assert tracker.release_lost(record, heartbeat_stale=12, send_stale=30) == 2

    assert states(client, record) == b"wrwq"
    assert inflight(client, record) == 2
    assert tracker.take(record, 4) == [0, 2]


def test_a_deferred_page_is_not_lost_and_its_retry_takes_it(client, tracker):
    """A page waiting out a retry's countdown is not released as lost, and the retry may run
    it from any process."""
    record = make_record(total=1)
    tracker.claim(record)
    tracker.mark_running(record, 0, "host-a:1")
    tracker.defer(record, 0, seconds=50)

    assert tracker.release_lost(record, heartbeat_stale=12, send_stale=30) == 0
    assert tracker.mark_running(record, 0, "host-b:2", stale_after=12)


@st.composite
def window_runs(draw):
    """Operations of senders and workers on a job's pages, in any order, lost sends and dead
    workers included; then the watchdog and workers finish everything."""
    total = draw(st.integers(min_value=1, max_value=6))
    positions = st.integers(min_value=0, max_value=total - 1)
    op = st.one_of(
        st.tuples(st.just("take"), st.integers(min_value=1, max_value=4)),
        st.tuples(st.just("confirm"), positions),
        st.tuples(st.just("run"), positions, st.sampled_from(["w1", "w2"])),
        st.tuples(st.just("finish"), positions),
        st.tuples(st.just("die"), st.sampled_from(["w1", "w2"])),
        st.tuples(st.just("release")),
        st.tuples(st.just("cancel")),
    )
    return total, draw(st.lists(op, max_size=40))


@HYPOTHESIS
@given(case=window_runs())
def test_any_run_of_the_window_keeps_its_count_and_finishes_each_page_once(case):
    """Whatever senders, workers and the watchdog do, in whatever order, the window's count is
    the pages queued or running, and every page is counted finished exactly once."""
    total, ops = case
    client = fakeredis.FakeRedis()
    tracker = JobTracker(client, JobKind.OCR, ttl=TTL)
    record = make_record(total=total)
    tracker.claim(record)
    finished: set[int] = set()
    lasts = 0
    for op in ops:
        if op[0] == "take":
            tracker.take(record, op[1])
        elif op[0] == "confirm":
            tracker.confirm_sent(record, [op[1]])
        elif op[0] == "run":
            tracker.mark_running(record, op[1], op[2], stale_after=30)
        elif op[0] == "finish":
            result = tracker.finish_page(record, op[1], "done")
            assert result.counted == (op[1] not in finished)
            finished.add(op[1])
            lasts += result.last
        elif op[0] == "die":  # a worker's heartbeats stop
            for page in tracker.running_pages(record):
                if page.worker == op[1]:
                    client.hset(running_key(record.task_id), page.position, f"{op[1]}|0")
        elif op[0] == "release":
            tracker.release_lost(record, heartbeat_stale=12, send_stale=-1)
        elif op[0] == "cancel":  # pages not running end as cancelled: finished too
            tracker.cancel(record)
            raw = states(client, record)
            finished |= {i for i in range(total) if raw[i : i + 1] == b"c"}
        raw = states(client, record)
        assert inflight(client, record) == raw.count(b"q") + raw.count(b"r")
    # Messages sent are delivered, the watchdog gives back what was lost, and live workers
    # finish whatever remains.
    tracker.release_lost(record, heartbeat_stale=-1, send_stale=-1)
    raw = states(client, record)
    sent = [i for i in range(total) if raw[i : i + 1] == b"q"]
    while taken := sent or tracker.take(record, 2):
        sent = []
        for position in taken:
            tracker.mark_running(record, position, "w3", stale_after=30)
            result = tracker.finish_page(record, position, "done")
            assert result.counted and position not in finished
            finished.add(position)
            lasts += result.last
    raw = states(client, record)
    assert raw.count(b"w") + raw.count(b"q") + raw.count(b"r") == 0
    assert counters(client, record)["finished"] == total
    assert lasts <= 1
