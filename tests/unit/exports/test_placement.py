"""Words of the exported text land on the scan where OCR read them, corrected or not."""

from __future__ import annotations

from dataclasses import replace

from app.exports.placement import (
    ESTIMATED,
    FROM_OCR,
    PAGE_STRIP,
    TYPED_CONFIDENCE,
    place_page,
)
from app.text.alignment import align_lines, ocr_lines


def placed_lines(page):
    return [
        line
        for paragraph in place_page(page.text, page.boxes, page.width, page.height)
        for line in paragraph.lines
    ]


def inside(box, page):
    left, top, right, bottom = box
    return 0 <= left < right <= page.width and 0 <= top < bottom <= page.height


def test_ocr_text_as_read_gets_tesseracts_own_word_boxes(ocr_pages):
    for page in ocr_pages.values():
        words = [word for line in placed_lines(page) for word in line.words]
        assert [w.text for w in words] == page.text.split()
        ocr_boxes = [(b[1], b[2], b[1] + b[3], b[2] + b[4]) for b in page.boxes]
        assert [w.box for w in words] == ocr_boxes
        assert {line.source for line in placed_lines(page)} == {FROM_OCR}


def test_every_word_of_a_corrected_page_has_one_box_inside_the_page(corrected_page):
    page, _ = corrected_page
    words = [word for line in placed_lines(page) for word in line.words]
    assert [w.text for w in words] == page.text.split()
    assert all(inside(w.box, page) for w in words)


def test_a_changed_word_keeps_its_ocr_box_and_its_line_the_others_confidence(corrected_page):
    page, edit = corrected_page
    ocr = ocr_lines(page.boxes)
    mapping = align_lines(page.text.split("\n"), ocr)
    ocr_line = ocr[mapping[edit["changed"]]]
    line = next(line for line in placed_lines(page) if line.index == edit["changed"])
    assert line.source == FROM_OCR
    assert line.box == ocr_line.box
    assert [w.box for w in line.words] == [
        (o.left, o.top, o.right, o.bottom) for o in ocr_line.words
    ]
    changed = line.words[1]
    assert changed.text == edit["changed_word"] and changed.confidence == TYPED_CONFIDENCE
    assert changed.typed and not line.words[0].typed
    assert line.words[0].confidence == ocr_line.words[0].confidence


def test_a_merged_line_is_laid_out_within_the_ocr_line_it_aligns_with(corrected_page):
    page, edit = corrected_page
    ocr = ocr_lines(page.boxes)
    index = align_lines(page.text.split("\n"), ocr)[edit["merged"]]
    assert index is not None
    line = next(line for line in placed_lines(page) if line.index == edit["merged"])
    left, top, right, bottom = ocr[index].box
    assert line.box == (left, top, right, bottom)
    assert len(line.words) > len(ocr[index].words)
    for word in line.words:
        assert left <= word.box[0] < word.box[2] <= right and (top, bottom) == word.box[1::2]
    # Laid out left to right, by their share of the characters.
    assert [w.box[0] for w in line.words] == sorted(w.box[0] for w in line.words)


def test_an_added_line_goes_below_the_line_before_it(corrected_page):
    page, edit = corrected_page
    lines = {line.index: line for line in placed_lines(page)}
    added, before = lines[edit["added"]], lines[edit["merged"]]
    assert added.source == ESTIMATED
    assert added.text == edit["added_text"]
    assert added.box[1] >= before.box[3]
    assert (added.box[0], added.box[2]) == (before.box[0], before.box[2])
    assert added.box[3] - added.box[1] == before.box[3] - before.box[1]
    assert inside(added.box, page)


def test_a_line_added_before_any_aligned_one_is_stacked_above_it(ocr_pages):
    page = ocr_pages["bilevel"]
    # The first two lines replaced by a heading: the first aligned line is OCR's third,
    # with room above it.
    text = "\n".join(["A heading nobody OCR'd", *page.text.split("\n")[2:]])
    page = replace(page, text=text)
    lines = placed_lines(page)
    assert lines[0].source == ESTIMATED and lines[1].source == FROM_OCR
    assert lines[1].box == ocr_lines(page.boxes)[2].box
    assert lines[0].box[3] <= lines[1].box[1]
    assert inside(lines[0].box, page)


def test_a_page_never_ocrd_is_split_into_strips_one_per_line(typed_page):
    page = typed_page("grey_png")
    lines = placed_lines(page)
    assert {line.source for line in lines} == {PAGE_STRIP}
    # Three text lines and a blank one: four strips, the blank one left empty.
    step = page.height / 4
    assert [line.index for line in lines] == [0, 1, 3]
    for line in lines:
        assert line.box[0] == 0 and line.box[2] == page.width
        assert abs(line.box[1] - line.index * step) <= 1
    assert [w.text for line in lines for w in line.words] == page.text.split()


def test_a_text_unrelated_to_its_ocr_is_split_within_the_ocr_text_area(ocr_pages):
    page = replace(ocr_pages["bilevel"], text="zzz qqq\nxxx")
    ocr = ocr_lines(page.boxes)
    area = (
        min(line.box[0] for line in ocr),
        min(line.box[1] for line in ocr),
        max(line.box[2] for line in ocr),
        max(line.box[3] for line in ocr),
    )
    lines = placed_lines(page)
    assert {line.source for line in lines} == {PAGE_STRIP}
    assert lines[0].box[:3:2] == (area[0], area[2])
    assert lines[0].box[1] == area[1] and lines[-1].box[3] == area[3]


def test_an_empty_page_has_no_lines(ocr_pages):
    assert placed_lines(replace(ocr_pages["bilevel"], text=" \n\n")) == []


def test_many_added_lines_at_the_foot_of_the_page_stay_on_it(ocr_pages):
    page = ocr_pages["devanagari"]
    page = replace(page, text=page.text + "\n" + "\n".join(f"added line {n}" for n in range(40)))
    lines = placed_lines(page)
    assert sum(line.source == ESTIMATED for line in lines) == 40
    assert all(inside(line.box, page) for line in lines)
    assert all(inside(word.box, page) for line in lines for word in line.words)
