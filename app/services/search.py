"""Search across a project's text: the pages whose text holds the query, each with its
matching lines and the match highlighted.

Case-insensitive and Unicode-safe: the query and the text are compared in NFC, so a word typed
precomposed finds it stored decomposed; a highlight never cuts a grapheme cluster (a
Devanagari vowel sign or conjunct stays with its consonant).

The database does the finding (SQL LIKE over the normalised, lower-cased text, on SQLite and
PostgreSQL alike), so a search never loads every page into Python; Python then reads only the
pages found, to pick their lines. LIKE lower-cases ASCII only on both databases (PostgreSQL's
C locale, SQLite's built-in lower), so each other cased letter of the query is a one-character
wildcard there and Python's case-insensitive match decides: the SQL finds a superset of the
pages, never fewer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, func, literal_column, select

from app.extensions import db
from app.models import Page, Project
from app.services.pagination import Paginated

#: Pages per screen of results, and matching lines shown per page.
PER_PAGE = 20
LINES_PER_PAGE = 5
#: Queries longer than this are refused (a search box, not a document).
MAX_QUERY = 200
#: Characters of a long line kept on each side of its first match.
CONTEXT = 120

_ZERO_WIDTH_JOINERS = {"\u200c", "\u200d"}


class SearchError(ValueError):
    """A query that cannot be searched for; the message says why."""


def normalise_query(query: str) -> str:
    query = unicodedata.normalize("NFC", (query or "").strip())
    if not query:
        raise SearchError("Type something to search for.")
    if len(query) > MAX_QUERY:
        raise SearchError(f"A search is at most {MAX_QUERY} characters long.")
    if "\n" in query or "\r" in query:
        raise SearchError("A search is one line: the text is searched line by line.")
    return query


# -- grapheme clusters ---------------------------------------------------------------------


def _continues_cluster(previous: str, char: str) -> bool:
    """Whether `char` belongs to the grapheme cluster that `previous` is in: a combining mark
    (a vowel sign, a nukta, an anusvara), a zero-width (non-)joiner, or a letter after a
    virama (an Indic conjunct, Unicode's GB9c)."""
    if unicodedata.category(char) in ("Mn", "Mc", "Me") or char in _ZERO_WIDTH_JOINERS:
        return True
    return unicodedata.combining(previous) == 9 and unicodedata.category(char).startswith("L")


def cluster_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole grapheme clusters."""
    while 0 < start < len(text) and _continues_cluster(text[start - 1], text[start]):
        start -= 1
    while 0 < end < len(text) and _continues_cluster(text[end - 1], text[end]):
        end += 1
    return start, end


# -- matching in Python ----------------------------------------------------------------------


def matcher(query: str) -> re.Pattern[str]:
    """The case-insensitive pattern of an (NFC) query."""
    return re.compile(re.escape(query), re.IGNORECASE)


def highlight(line: str, pattern: re.Pattern[str]) -> Markup:
    """`line` with each match in <mark>, escaped; a long line is cut around its first match."""
    spans = [cluster_bounds(line, m.start(), m.end()) for m in pattern.finditer(line)]
    prefix = suffix = ""
    if spans and len(line) > 2 * CONTEXT:
        first_start = spans[0][0]
        lo = cluster_bounds(line, max(0, first_start - CONTEXT), 0)[0]
        hi = cluster_bounds(line, 0, min(len(line), spans[0][1] + CONTEXT))[1]
        prefix, suffix = ("…" if lo else ""), ("…" if hi < len(line) else "")
        spans = [(max(s, lo) - lo, min(e, hi) - lo) for s, e in spans if s < hi and e > lo]
        line = line[lo:hi]
    out, at = [escape(prefix)], 0
    for start, end in spans:
        if start < at:
            start = at  # two matches widened into the same cluster
        if end <= start:
            continue
        out.append(escape(line[at:start]))
        out.append(Markup("<mark>{}</mark>").format(line[start:end]))
        at = end
    out.append(escape(line[at:]))
    out.append(escape(suffix))
    return Markup("").join(out)


# -- finding in SQL --------------------------------------------------------------------------


def like_pattern(query: str) -> str:
    """The LIKE pattern (escape character backslash) that every text holding `query`,
    compared case-insensitively, matches once lower-cased."""
    out = []
    for char in query:
        if char.isascii():
            char = char.lower()
            out.append("\\" + char if char in "%_\\" else char)
        elif char.lower() != char or char.upper() != char:
            out.append("_")  # a cased letter LIKE cannot fold here: Python decides
        else:
            out.append(char)
    return "%" + "".join(out) + "%"


def normalised_text() -> ColumnElement:
    """Page.text in NFC, in the session's database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.normalize(Page.text, literal_column("NFC"))
    return func.nfc(Page.text)  # registered on every SQLite connection (app/__init__.py)


def matching_pages_query(project: Project, query: str):
    """(number, text) of the pages that may hold `query`, in book order: a superset."""
    return (
        select(Page.number, Page.text)
        .where(
            Page.project_id == project.id,
            func.lower(normalised_text()).like(like_pattern(query), escape="\\"),
        )
        .order_by(Page.number)
    )


# -- the results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LineHit:
    #: 1-based line of the page.
    line: int
    html: Markup


@dataclass(frozen=True)
class PageHit:
    number: int
    #: Matches on the page, all lines counted.
    matches: int
    lines: list[LineHit] = field(default_factory=list)
    #: Lines of the page with a match (only the first LINES_PER_PAGE are in `lines`).
    matching_lines: int = 0

    @property
    def more_lines(self) -> int:
        return max(0, self.matching_lines - len(self.lines))


@dataclass(frozen=True)
class SearchResults(Paginated):
    query: str
    hits: list[PageHit]
    page: int
    per_page: int
    #: Pages with at least one match, and matches in all.
    total: int
    matches: int


def search_project(
    project: Project, query: str, page: int = 1, per_page: int = PER_PAGE
) -> SearchResults:
    """The pages of `project` whose text holds `query`, one screen of them. Raises
    SearchError for a query that cannot be searched."""
    query = normalise_query(query)
    pattern = matcher(query)
    page = max(1, page)
    first = (page - 1) * per_page
    hits: list[PageHit] = []
    total = matches = 0
    rows = db.session.execute(matching_pages_query(project, query).execution_options(yield_per=200))
    for number, text in rows:
        text = unicodedata.normalize("NFC", text or "")
        count = len(pattern.findall(text))
        if not count:
            continue  # a letter LIKE wildcarded matched something else
        if first <= total < first + per_page:
            hits.append(_page_hit(number, text, count, pattern))
        total += 1
        matches += count
    return SearchResults(
        query=query, hits=hits, page=page, per_page=per_page, total=total, matches=matches
    )


def _page_hit(number: int, text: str, count: int, pattern: re.Pattern[str]) -> PageHit:
    lines = [(i, line) for i, line in enumerate(text.split("\n"), start=1) if pattern.search(line)]
    return PageHit(
        number=number,
        matches=count,
        lines=[LineHit(i, highlight(line, pattern)) for i, line in lines[:LINES_PER_PAGE]],
        matching_lines=len(lines),
    )
