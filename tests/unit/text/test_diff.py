"""The word diff (app/text/diff.py) that the history, the edit conflict and re-OCR show."""

from __future__ import annotations

import unicodedata

from markupsafe import Markup

from app.text.diff import DiffPart, changed_words, diff_html, diff_parts


def test_an_unchanged_text_has_no_insertion_or_deletion():
    text = "धर्मक्षेत्रे कुरुक्षेत्रे\nसमवेता युयुत्सवः ।"
    assert diff_parts(text, text) == [DiffPart("equal", text)]
    assert "<ins>" not in diff_html(text, text) and "<del>" not in diff_html(text, text)


def test_a_changed_word_is_deleted_then_inserted_whole():
    assert diff_parts("the quick fox", "the quack fox") == [
        DiffPart("equal", "the "),
        DiffPart("delete", "quick"),
        DiffPart("insert", "quack"),
        DiffPart("equal", " fox"),
    ]


def test_devanagari_vowel_signs_and_conjuncts_are_never_cut_from_their_word():
    """कुरुक्षेत्रे → कुरूक्षेत्रे changes one vowel sign (ु → ू) inside a conjunct-laden word:
    the diff replaces the whole word, so no cluster is split and each side is a word that
    renders on its own."""
    before = "धर्मक्षेत्रे कुरुक्षेत्रे समवेता"
    after = "धर्मक्षेत्रे कुरूक्षेत्रे समवेताः युयुत्सवः"
    parts = diff_parts(before, after)
    changed = [p for p in parts if p.op != "equal"]
    assert [(p.op, p.text) for p in changed] == [
        ("delete", "कुरुक्षेत्रे"),
        ("insert", "कुरूक्षेत्रे"),
        ("delete", "समवेता"),
        ("insert", "समवेताः युयुत्सवः"),
    ]
    for part in changed:
        # No part starts with a combining mark (a vowel sign, virama or visarga cut loose).
        assert unicodedata.category(part.text[0]) not in ("Mn", "Mc"), part
    # Put back together, each side is the text it came from.
    assert "".join(p.text for p in parts if p.op != "insert") == before
    assert "".join(p.text for p in parts if p.op != "delete") == after


def test_the_html_escapes_the_text_and_marks_changes():
    html = diff_html("a <b> & c", "a <i> & c d")
    assert isinstance(html, Markup)
    assert html == Markup("a <del>&lt;b&gt;</del><ins>&lt;i&gt;</ins> &amp; c<ins> d</ins>")


def test_line_breaks_are_kept_and_windows_line_ends_are_not_a_change():
    assert diff_parts("one\r\ntwo", "one\ntwo") == [DiffPart("equal", "one\ntwo")]
    assert diff_html("one\ntwo", "one\n\ntwo") == Markup("one<del>\n</del><ins>\n\n</ins>two")


def test_changed_words_counts_the_words_on_each_side():
    assert changed_words("धर्म क्षेत्र कुरु", "धर्म क्षेत्रे कुरु पाण्डव") == (1, 2)
    assert changed_words("", "नमः") == (0, 1)
