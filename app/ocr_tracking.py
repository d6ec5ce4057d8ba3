"""The Redis record of running OCR jobs: every key name, TTL and JSON shape lives here.

Keys (docs/batch-ocr-task-tracking.md is the operator's reference):

- ``ocr_task:<slug>``: JSON ``{"task_id", "engine", "started_at", "project_slug", "language",
  "total"}``; written with SET NX (one job per project, whoever clicks first), TTL
  ``OCR_JOB_TTL`` renewed on each finished page, deleted by name when the job ends.
- ``ocr_job:<task_id>:pages``: one byte per page of the job, its state (``PAGE_STATES``).
  A 2000-page job costs 2000 bytes; a page changes state with SETRANGE.
- ``ocr_job:<task_id>:progress``: hash of counters (finished, done, failed, skipped, total)
  and timestamps (first_started, last_progress), updated in the same script as the page byte.
- ``ocr_job:<task_id>:errors``: hash position -> reason, for failed and skipped pages only.

Every change to a page's state runs in one Lua script, so it is atomic and idempotent: a page
already finished is never counted twice, whatever a redelivered task does, and exactly one
caller learns that it finished the last page. Nothing here scans keys.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import redis

log = logging.getLogger(__name__)

#: Byte per page in ``ocr_job:<id>:pages``.
PAGE_STATES = {
    b"q"[0]: "queued",
    b"r"[0]: "running",
    b"d"[0]: "done",
    b"f"[0]: "failed",
    b"s"[0]: "skipped",
    b"c"[0]: "cancelled",
}
OUTCOME_CODES = {"done": "d", "failed": "f", "skipped": "s"}
#: How long the per-job keys stay after the job ends, for a late poll or a redelivered task.
ENDED_JOB_KEYS_TTL = 600


def job_key(slug: str) -> str:
    return f"ocr_task:{slug}"


def pages_key(task_id: str) -> str:
    return f"ocr_job:{task_id}:pages"


def progress_key(task_id: str) -> str:
    return f"ocr_job:{task_id}:progress"


def errors_key(task_id: str) -> str:
    return f"ocr_job:{task_id}:errors"


class CorruptRecord(ValueError):
    """What is stored under ``ocr_task:<slug>`` is not a record this code wrote."""


@dataclass(frozen=True)
class JobRecord:
    """The JSON stored under ``ocr_task:<slug>``."""

    task_id: str
    engine: str
    started_at: str
    project_slug: str
    language: str = ""
    total: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> JobRecord:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: a hand-made value nested deeper than the parser goes.
            raise CorruptRecord(f"not JSON: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise CorruptRecord("not a JSON object")
        for name in ("task_id", "engine", "started_at", "project_slug"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise CorruptRecord(f"missing or invalid {name!r}")
        total = data.get("total", 0)
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise CorruptRecord("invalid 'total'")
        language = data.get("language", "")
        if not isinstance(language, str):
            raise CorruptRecord("invalid 'language'")
        return cls(
            task_id=data["task_id"],
            engine=data["engine"],
            started_at=data["started_at"],
            project_slug=data["project_slug"],
            language=language,
            total=total,
        )


@dataclass(frozen=True)
class JobProgress:
    """A snapshot of a running job, read in a constant number of round trips."""

    record: JobRecord
    #: ``ocr_job:<id>:pages`` as read: one state byte per page (PAGE_STATES).
    states_raw: bytes
    errors: dict[int, str]
    counts: dict[str, int] = field(default_factory=dict)
    first_started: float | None = None
    last_progress: float | None = None

    @property
    def finished(self) -> int:
        return self.counts.get("finished", 0)

    @cached_property
    def page_states(self) -> list[str]:
        """The state of each page, in job order (decoded once, when first asked for)."""
        return decode_page_states(self.states_raw, self.record.total)


@dataclass(frozen=True)
class PageFinish:
    #: False when the page had already finished (a redelivered task) or the job is gone.
    counted: bool
    #: True for exactly one caller: the one that finished the job's last page.
    last: bool


# A record is ours to delete only if it names our task: a new job may have taken the slug.
_OWNS_RECORD = """
local function owns(key, task_id)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, rec = pcall(cjson.decode, raw)
  return ok and type(rec) == 'table' and rec['task_id'] == task_id
end
"""

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], string.rep('q', tonumber(ARGV[3])), 'EX', ARGV[2])
  redis.call('HSET', KEYS[3], 'total', ARGV[3], 'finished', 0, 'done', 0, 'failed', 0,
             'skipped', 0, 'cancelled', 0, 'last_progress', ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  return false
end
return redis.call('GET', KEYS[1])
"""

_MARK_RUNNING = """
local cur = redis.call('GETRANGE', KEYS[1], ARGV[1], ARGV[1])
if cur == 'q' then
  redis.call('SETRANGE', KEYS[1], ARGV[1], 'r')
  redis.call('HSETNX', KEYS[2], 'first_started', ARGV[2])
end
if cur == 'q' or cur == 'r' then
  redis.call('HSET', KEYS[2], 'last_progress', ARGV[2])
  return 1
end
return 0
"""

_FINISH_PAGE = (
    _OWNS_RECORD
    + """
-- KEYS: pages, progress, errors, job record; ARGV: position, code, outcome, reason, now, ttl,
-- task_id
local cur = redis.call('GETRANGE', KEYS[1], ARGV[1], ARGV[1])
if cur ~= 'q' and cur ~= 'r' then return 0 end
redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
local finished = redis.call('HINCRBY', KEYS[2], 'finished', 1)
redis.call('HSET', KEYS[2], 'last_progress', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
if owns(KEYS[4], ARGV[7]) then redis.call('EXPIRE', KEYS[4], ARGV[6]) end
if finished >= tonumber(redis.call('HGET', KEYS[2], 'total')) then return 2 end
return 1
"""
)

_CANCEL = (
    _OWNS_RECORD
    + """
-- KEYS: pages, progress, job record; ARGV: task_id, now
local states = redis.call('GET', KEYS[1])
local n = 0
if states then
  local out
  out, n = string.gsub(states, 'q', 'c')
  redis.call('SET', KEYS[1], out, 'KEEPTTL')
  redis.call('HINCRBY', KEYS[2], 'cancelled', n)
  redis.call('HINCRBY', KEYS[2], 'finished', n)
  redis.call('HSET', KEYS[2], 'last_progress', ARGV[2])
end
if owns(KEYS[3], ARGV[1]) then redis.call('DEL', KEYS[3]) end
return n
"""
)

_END = (
    _OWNS_RECORD
    + """
-- KEYS: job record, pages, progress, errors; ARGV: task_id, ttl of the ended job's keys
local deleted = 0
if owns(KEYS[1], ARGV[1]) then deleted = redis.call('DEL', KEYS[1]) end
for i = 2, 4 do
  if redis.call('TTL', KEYS[i]) > tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return deleted
"""
)

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class OcrJobTracker:
    """Reads and writes the Redis record of OCR jobs. One instance per Redis client."""

    def __init__(self, client: redis.Redis, ttl: int = 24 * 3600) -> None:
        self.redis = client
        self.ttl = ttl
        self._claim = client.register_script(_CLAIM)
        self._mark_running = client.register_script(_MARK_RUNNING)
        self._finish_page = client.register_script(_FINISH_PAGE)
        self._cancel = client.register_script(_CANCEL)
        self._end = client.register_script(_END)
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    # -- starting --------------------------------------------------------------------------

    def claim(self, record: JobRecord) -> JobRecord | None:
        """Record `record` as the project's running job, unless one is recorded already.

        Returns None when the claim succeeded, else the job already running (the caller
        shows its progress page). Record, page states and counters appear in one step.
        """
        # A corrupt record in the way is discarded and the claim tried again; a few tries
        # are enough unless something keeps writing garbage under the key.
        for _attempt in range(3):
            existing = self._try_claim(record)
            if existing is None:
                return None
            try:
                return JobRecord.from_json(existing)
            except CorruptRecord:
                log.warning(
                    "replacing corrupt %s: %r", job_key(record.project_slug), existing[:200]
                )
                self._discard_corrupt(record.project_slug, existing)
        raise CorruptRecord(f"{job_key(record.project_slug)} keeps being overwritten")

    def _try_claim(self, record: JobRecord) -> bytes | None:
        return self._claim(
            keys=[
                job_key(record.project_slug),
                pages_key(record.task_id),
                progress_key(record.task_id),
            ],
            args=[record.to_json(), self.ttl, record.total, time.time()],
        )

    # -- reading ---------------------------------------------------------------------------

    def current(self, slug: str) -> JobRecord | None:
        """The project's running job, or None. A corrupt record is deleted and logged."""
        raw = self.redis.get(job_key(slug))
        if raw is None:
            return None
        try:
            return JobRecord.from_json(raw)
        except CorruptRecord as exc:
            log.warning("deleting corrupt %s (%s): %r", job_key(slug), exc, raw[:200])
            self._discard_corrupt(slug, raw)
            return None

    def progress(self, slug: str) -> JobProgress | None:
        """The running job and its page states: two round trips whatever the page count."""
        record = self.current(slug)
        if record is None:
            return None
        return self.progress_of(record)

    def progress_of(self, record: JobRecord) -> JobProgress:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(pages_key(record.task_id))
        pipe.hgetall(progress_key(record.task_id))
        pipe.hgetall(errors_key(record.task_id))
        states_raw, progress_raw, errors_raw = pipe.execute()
        return JobProgress(
            record=record,
            states_raw=states_raw or b"",
            errors=_decode_errors(errors_raw),
            counts=_decode_counts(progress_raw),
            first_started=_float(progress_raw.get(b"first_started")),
            last_progress=_float(progress_raw.get(b"last_progress")),
        )

    # -- the worker's side -----------------------------------------------------------------

    def mark_dispatched(self, record: JobRecord) -> bool:
        """True the first time only: a redelivered dispatch must not send the pages again."""
        return bool(self.redis.hsetnx(progress_key(record.task_id), "dispatched", 1))

    def mark_running(self, record: JobRecord, position: int) -> bool:
        """Note that a page started. False if the page must not run (finished or cancelled)."""
        started = self._mark_running(
            keys=[pages_key(record.task_id), progress_key(record.task_id)],
            args=[position, time.time()],
        )
        return bool(started)

    def finish_page(
        self, record: JobRecord, position: int, outcome: str, reason: str = ""
    ) -> PageFinish:
        """Record a page's outcome ("done", "failed", "skipped"); idempotent per page."""
        result = self._finish_page(
            keys=[
                pages_key(record.task_id),
                progress_key(record.task_id),
                errors_key(record.task_id),
                job_key(record.project_slug),
            ],
            args=[
                position,
                OUTCOME_CODES[outcome],
                outcome,
                reason[:500],
                time.time(),
                self.ttl,
                record.task_id,
            ],
        )
        return PageFinish(counted=result > 0, last=result == 2)

    # -- ending ----------------------------------------------------------------------------

    def cancel(self, record: JobRecord) -> int:
        """Mark every queued page cancelled and delete the record. Returns pages cancelled."""
        return int(
            self._cancel(
                keys=[
                    pages_key(record.task_id),
                    progress_key(record.task_id),
                    job_key(record.project_slug),
                ],
                args=[record.task_id, time.time()],
            )
        )

    def end(self, record: JobRecord) -> bool:
        """Delete the job's record by name, if it is still this job's; True if deleted now.

        The per-job keys are kept briefly (ENDED_JOB_KEYS_TTL) so that a poll racing the end
        still reads a consistent state, then expire.
        """
        deleted = self._end(
            keys=[
                job_key(record.project_slug),
                pages_key(record.task_id),
                progress_key(record.task_id),
                errors_key(record.task_id),
            ],
            args=[record.task_id, ENDED_JOB_KEYS_TTL],
        )
        return bool(deleted)

    def _discard_corrupt(self, slug: str, raw: bytes) -> None:
        self._delete_if_equal(keys=[job_key(slug)], args=[raw])


def decode_page_states(raw: bytes, total: int) -> list[str]:
    """Page states from the state string; missing or unknown bytes read as "queued"."""
    states = [PAGE_STATES.get(b, "queued") for b in raw[:total]]
    states.extend("queued" for _ in range(total - len(states)))
    return states


def _decode_counts(raw: dict[Any, Any]) -> dict[str, int]:
    counts = {}
    for key, value in raw.items():
        if key in (b"first_started", b"last_progress"):
            continue
        try:
            counts[key.decode("utf-8", "replace")] = int(value)
        except ValueError:
            continue
    return counts


def _decode_errors(raw: dict[Any, Any]) -> dict[int, str]:
    errors = {}
    for key, value in raw.items():
        try:
            errors[int(key)] = value.decode("utf-8", "replace")
        except ValueError:
            continue
    return errors


def _float(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
