"""Search and replace over a project's pages: a preview of every page it would change, then
applying it, each page saved as a revision with a summary (app/services/pages.py).

Applying never overwrites a page someone saved since the preview: each page is saved against
the version the preview showed, and a page changed since is skipped and reported. A few
pages (SYNC_LIMIT) are replaced in the request; more run as a job of kind REPLACE
(app/services/jobs/), one `replace_page` task per page, whose revisions carry the job's id so
that a redelivered task writes nothing twice.

The find text is literal unless asked to be a regular expression; both are NFC-normalised,
as the editor's text is typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from markupsafe import Markup
from sqlalchemy import select

from app import queue
from app.extensions import db
from app.models import ItemState, Job, JobKind, JobPage, Page, Project, User, utcnow
from app.services import jobs
from app.services.jobs.items import NOT_RUN, PageOutcome, fail_item, run_item
from app.services.pages import save_page_text
from app.text.diff import diff_html

#: Up to this many pages are replaced in the request; more run as a background job.
SYNC_LIMIT = 20
#: Diffs shown in a preview; the rest of the pages are counted.
PREVIEW_DIFFS = 50
MAX_FIND = 500
SELECTION = "replace"


class ReplaceError(jobs.JobError):
    """A search and replace that cannot be done; the message says why."""


@dataclass(frozen=True)
class Replacement:
    find: str
    replace: str
    regex: bool = False

    @classmethod
    def parse(cls, find: str, replace: str, regex: bool = False) -> Replacement:
        """A replacement from what a user typed; ReplaceError says what is wrong with it."""
        find = unicodedata.normalize("NFC", find or "")
        replace = unicodedata.normalize("NFC", (replace or "").replace("\r\n", "\n"))
        if not find:
            raise ReplaceError("Type the text to find.")
        if len(find) > MAX_FIND or len(replace) > MAX_FIND:
            raise ReplaceError(f"The find and replace texts are at most {MAX_FIND} characters.")
        replacement = cls(find, replace, bool(regex))
        replacement.pattern()
        return replacement

    def pattern(self) -> re.Pattern[str]:
        if not self.regex:
            return re.compile(re.escape(self.find))
        try:
            pattern = re.compile(self.find)
            pattern.sub(self.replace, "")  # checks the replacement's group references
        except re.error as exc:
            raise ReplaceError(f"That is not a valid regular expression: {exc}.") from None
        except IndexError as exc:  # a group name the pattern does not have
            raise ReplaceError(f"The replacement names a group the pattern lacks: {exc}.") from None
        if pattern.search(""):
            raise ReplaceError(
                "That regular expression matches empty text, so it would insert the "
                "replacement everywhere; make it match at least one character."
            )
        return pattern

    def apply(self, text: str) -> tuple[str, int]:
        """`text` with every match replaced, and how many there were."""
        if not self.regex:
            return text.replace(self.find, self.replace), text.count(self.find)
        pattern = self.pattern()
        try:
            return pattern.subn(self.replace, text)
        except (re.error, IndexError) as exc:
            raise ReplaceError(f"The replacement cannot be used: {exc}.") from None

    @property
    def summary(self) -> str:
        kind = "regex " if self.regex else ""
        return f"Replaced {kind}“{self.find}” with “{self.replace}”"[:256]

    def options(self, versions: Mapping[int, int]) -> dict:
        return {
            "find": self.find,
            "replace": self.replace,
            "regex": self.regex,
            "versions": {str(page_id): version for page_id, version in versions.items()},
        }


# -- preview -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewEntry:
    page_id: int
    number: int
    version: int
    count: int
    diff: Markup


@dataclass(frozen=True)
class Preview:
    replacement: Replacement
    #: The first PREVIEW_DIFFS pages changed, in book order, with their diffs.
    entries: list[PreviewEntry]
    #: Every page changed: page id -> the version the preview was made from.
    versions: dict[int, int] = field(default_factory=dict)
    matches: int = 0

    @property
    def pages(self) -> int:
        return len(self.versions)

    @property
    def runs_as_job(self) -> bool:
        return self.pages > SYNC_LIMIT


def _candidates(project: Project, replacement: Replacement):
    """(id, number, version, text) of the pages that may hold the find text. A literal find
    is looked for in SQL (LIKE: case-insensitive on SQLite for ASCII, a superset); a regular
    expression can only be tried on each page."""
    query = select(Page.id, Page.number, Page.version, Page.text).where(
        Page.project_id == project.id
    )
    if not replacement.regex:
        escaped = "".join("\\" + c if c in "%_\\" else c for c in replacement.find)
        query = query.where(Page.text.like(f"%{escaped}%", escape="\\"))
    return db.session.execute(query.order_by(Page.number).execution_options(yield_per=200))


def preview_replace(
    project: Project, replacement: Replacement, limit: int = PREVIEW_DIFFS
) -> Preview:
    """What applying `replacement` would change, page by page."""
    entries: list[PreviewEntry] = []
    versions: dict[int, int] = {}
    matches = 0
    for page_id, number, version, text in _candidates(project, replacement):
        new_text, count = replacement.apply(text)
        if not count or new_text == text:
            continue
        versions[page_id] = version
        matches += count
        if len(entries) < limit:
            entries.append(PreviewEntry(page_id, number, version, count, diff_html(text, new_text)))
    return Preview(replacement, entries, versions, matches)


def parse_versions(project: Project, raw: object) -> dict[int, int]:
    """The pages and versions a preview form sent back, checked: only pages of `project`."""
    if not isinstance(raw, dict) or not raw:
        raise ReplaceError("The form did not say which pages to change; preview again.")
    try:
        versions = {int(page_id): int(version) for page_id, version in raw.items()}
    except (TypeError, ValueError):
        raise ReplaceError("The form's list of pages is damaged; preview again.") from None
    known = set(
        db.session.scalars(
            select(Page.id).where(Page.project_id == project.id, Page.id.in_(list(versions)))
        )
    )
    if known != set(versions):
        raise ReplaceError("The form names pages that are not in this project; preview again.")
    return versions


# -- applying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyOutcome:
    #: The job doing it, when it runs in the background; None when done in the request.
    job_id: str | None = None
    #: False when a search and replace was already running (the caller shows that one).
    started: bool = True
    replaced: list[int] = field(default_factory=list)
    #: (page number, why) of each page left as it was.
    skipped: list[tuple[int, str]] = field(default_factory=list)


CHANGED_SINCE = "changed since the preview; preview again to include it"


def replace_in_page(
    page: Page,
    replacement: Replacement,
    version: int,
    user: User,
    *,
    job_page: JobPage | None = None,
) -> PageOutcome:
    """Replace in one page, saved against `version` (the preview's) as a revision by `user`.
    With `job_page`, the revision names its job and the page's outcome is written with it."""
    if page.version != version:
        return PageOutcome(ItemState.SKIPPED, CHANGED_SINCE)
    new_text, count = replacement.apply(page.text)
    if not count or new_text == page.text:
        return PageOutcome(ItemState.SKIPPED, "no longer holds the text")
    if job_page is not None:
        # Committed by the save, in the same transaction as the revision.
        job_page.state = ItemState.DONE
        job_page.finished_at = utcnow()
    saved = save_page_text(
        page,
        user,
        new_text,
        version,
        summary=f"{replacement.summary} ({count}×)",
        job_id=job_page.job_id if job_page is not None else None,
    )
    if saved.refused:
        db.session.rollback()
        return PageOutcome(ItemState.SKIPPED, saved.refused)
    if not saved.saved:
        return PageOutcome(ItemState.SKIPPED, CHANGED_SINCE)
    return PageOutcome(ItemState.DONE)


@queue.needs_redis
def apply_replace(
    project: Project, replacement: Replacement, versions: Mapping[int, int], user: User
) -> ApplyOutcome:
    """Apply `replacement` to the pages of a preview (`versions`): here for a few, as a job
    for more."""
    pages = db.session.scalars(
        select(Page).where(Page.id.in_(list(versions))).order_by(Page.number)
    ).all()
    if len(pages) > SYNC_LIMIT:
        started = jobs.start_job(
            project,
            JobKind.REPLACE,
            page_ids=[page.id for page in pages],
            selection=SELECTION,
            user=user,
            options=replacement.options(versions),
        )
        return ApplyOutcome(job_id=started.job_id, started=started.started)
    running = jobs.current_job(project, JobKind.REPLACE)
    if running is not None:
        # Its pages may be these: one search and replace at a time.
        return ApplyOutcome(job_id=running.task_id, started=False)
    replaced, skipped = [], []
    for page in pages:
        outcome = replace_in_page(page, replacement, versions[page.id], user)
        if outcome.outcome == ItemState.DONE:
            replaced.append(page.number)
        else:
            skipped.append((page.number, outcome.reason))
    return ApplyOutcome(replaced=replaced, skipped=skipped)


# -- the job's pages -----------------------------------------------------------------------


def run_replace_page(job_id: str, position: int, *, worker: str = "") -> PageOutcome:
    """Replace in one page of a REPLACE job and record the outcome. Idempotent."""
    return run_item(job_id, position, _replace_work, worker=worker or "-")


def fail_replace_page(job_id: str, position: int, reason: str, *, worker: str | None = None):
    fail_item(job_id, position, reason, worker=worker)


def _replace_work(job: Job, job_page: JobPage) -> PageOutcome:
    page = job_page.page
    if page is None:
        return PageOutcome(NOT_RUN, "the page no longer exists")
    options = job.options or {}
    if job.started_by is None:
        return PageOutcome(ItemState.FAILED, "the user who started the job no longer exists")
    try:
        replacement = Replacement.parse(
            options.get("find", ""), options.get("replace", ""), options.get("regex", False)
        )
    except ReplaceError as exc:
        return PageOutcome(ItemState.FAILED, str(exc))
    version = (options.get("versions") or {}).get(str(page.id))
    if version is None:
        return PageOutcome(ItemState.SKIPPED, "not in the preview")
    return replace_in_page(page, replacement, int(version), job.started_by, job_page=job_page)


def replace_status(project: Project) -> jobs.JobStatus:
    return jobs.job_status(project, JobKind.REPLACE)


def cancel_replace(project: Project) -> Job:
    return jobs.cancel_job(project, JobKind.REPLACE)
