"""Search across a project's text: case-insensitive, NFC-normalised, found in SQL, each hit
linked to its page with the matched line and the match highlighted."""

from __future__ import annotations

import unicodedata

import pytest
from markupsafe import Markup

from app.services import search
from tests.support import BOTH_DATABASES
from tests.unit.proofing.conftest import set_pages


def numbers(found) -> list[int]:
    return [hit.number for hit in found.hits]


@BOTH_DATABASES
def test_finds_pages_case_insensitively_in_book_order(app, book):
    found = search.search_project(book, "quick BROWN")
    assert numbers(found) == [2] and found.matches == 1
    [line] = found.hits[0].lines
    assert line.line == 1 and line.html == Markup("The <mark>Quick brown</mark> fox")


@BOTH_DATABASES
def test_non_ascii_letters_match_whatever_their_case(app, book):
    """A query "café" finds "Café" and "CAFÉ" on both databases, though LIKE folds ASCII only."""
    found = search.search_project(book, "café")
    assert numbers(found) == [3] and found.matches == 2


@BOTH_DATABASES
def test_devanagari_is_found_and_counted_per_match(app, book):
    found = search.search_project(book, "कुरुक्षेत्रे")
    assert numbers(found) == [1, 4]
    assert [hit.matches for hit in found.hits] == [1, 2] and found.matches == 3


@BOTH_DATABASES
def test_decomposed_text_is_found_by_a_precomposed_query(app, book):
    set_pages(book, {5: unicodedata.normalize("NFD", "Noël à Paris")})
    found = search.search_project(book, "noël")
    assert numbers(found) == [5]
    assert found.hits[0].lines[0].html == Markup("<mark>Noël</mark> à Paris")


@BOTH_DATABASES
@pytest.mark.parametrize("query, expected", [("100%", [6]), ("e_t", [6]), ("%", [6]), ("_", [6])])
def test_like_wildcards_in_a_query_are_literal(app, book, query, expected):
    assert numbers(search.search_project(book, query)) == expected


def test_a_highlight_never_cuts_a_grapheme_cluster(app):
    pattern = search.matcher("क")
    # क्षे is one cluster (a conjunct with its vowel sign): all of it is marked.
    assert search.highlight("क्षेत्र", pattern).startswith(Markup("<mark>क्षे</mark>"))
    assert search.cluster_bounds("कि", 0, 1) == (0, 2)
    assert search.highlight("<b>&", search.matcher("b")) == Markup("&lt;<mark>b</mark>&gt;&amp;")


def test_results_are_paginated_by_page(app, book):
    set_pages(book, {n: f"needle on page {n}" for n in range(1, 7)})
    first = search.search_project(book, "needle", page=1, per_page=4)
    second = search.search_project(book, "needle", page=2, per_page=4)
    assert numbers(first) == [1, 2, 3, 4] and numbers(second) == [5, 6]
    assert first.total == second.total == 6 and first.pages == 2


@pytest.mark.parametrize("query", ["", "   ", "x" * 201])
def test_an_unsearchable_query_says_why(app, book, query):
    with pytest.raises(search.SearchError):
        search.search_project(book, query)


def test_the_search_page_links_each_hit_to_its_page(app, book, sign_in):
    html = sign_in("reader").get("/proofing/book/search?q=KURU").get_data(as_text=True)
    assert "0 pages" in html  # Latin letters do not find Devanagari
    html = sign_in("reader").get("/proofing/book/search?q=lazy").get_data(as_text=True)
    assert 'href="/proofing/book/2/"' in html and "the <mark>lazy</mark> dog" in html
    assert 'id="replace"' not in html  # a proofreader does not replace


def test_an_editor_sees_the_replace_form_and_a_bad_query_is_a_400(app, book, sign_in):
    client = sign_in("editor")
    assert 'id="replace"' in client.get("/proofing/book/search").get_data(as_text=True)
    response = client.get("/proofing/book/search?q=" + "x" * 300)
    assert response.status_code == 400 and "at most 200" in response.get_data(as_text=True)


def test_searching_a_private_project_is_a_404_to_others(app, private_book, sign_in):
    assert sign_in("reader").get("/proofing/secret/search?q=hidden").status_code == 404
    html = sign_in("second").get("/proofing/secret/search?q=hidden").get_data(as_text=True)
    assert "2 pages" in html
