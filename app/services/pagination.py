"""One screen of a longer list (jobs, a page's revisions, search hits, a book's pages): what
the pager under each list reads. A list's dataclass inherits this and has `page` (1-based),
`per_page` and `total` fields of its own."""

from __future__ import annotations


class Paginated:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages
