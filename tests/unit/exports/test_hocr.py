"""hOCR: a ZIP of XHTML pages with a word box for every word of the exported text."""

from __future__ import annotations

import re
import zipfile

from lxml import etree

from app.text.alignment import align_lines, ocr_lines

XHTML = "{http://www.w3.org/1999/xhtml}"


def bbox(element) -> tuple[int, ...]:
    match = re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", element.get("title"))
    return tuple(int(v) for v in match.groups())


def pages_of(path):
    with zipfile.ZipFile(path) as archive:
        return {name: etree.fromstring(archive.read(name)) for name in archive.namelist()}


def by_class(root, name):
    return root.iter(f"{XHTML}*") and [e for e in root.iter() if e.get("class") == name]


def test_one_file_per_page_named_by_number(ocr_pages, run_export, tmp_path):
    pages = [ocr_pages["bilevel"], ocr_pages["devanagari"]]
    pages[1] = pages[1].__class__(**{**pages[1].__dict__, "number": 12})
    files = pages_of(run_export("hocr", pages, tmp_path))
    assert sorted(files) == ["linn-book/linn-book-0001.hocr", "linn-book/linn-book-0012.hocr"]
    root = files["linn-book/linn-book-0012.hocr"]
    assert root.tag == f"{XHTML}html"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "sa"
    [page] = by_class(root, "ocr_page")
    assert bbox(page) == (0, 0, 1300, 420)
    assert "ppageno 11" in page.get("title") and "scan_res 300 300" in page.get("title")
    assert 'image "devanagari.png"' in page.get("title")


def test_every_word_has_a_box_inside_the_page_and_a_confidence(
    ocr_pages, corrected_page, tmp_path, run_export
):
    corrected, _ = corrected_page
    for name, page in [*ocr_pages.items(), ("corrected", corrected)]:
        [root] = pages_of(run_export("hocr", [page], tmp_path / name)).values()
        words = by_class(root, "ocrx_word")
        assert [w.text for w in words] == page.text.split()
        for word in words:
            left, top, right, bottom = bbox(word)
            assert 0 <= left < right <= page.width and 0 <= top < bottom <= page.height
            assert 0 <= int(re.search(r"x_wconf (\d+)", word.get("title")).group(1)) <= 100
        for line in by_class(root, "ocr_line"):
            box = bbox(line)
            for word in line.iter(f"{XHTML}span"):
                if word.get("class") == "ocrx_word":
                    inner = bbox(word)
                    assert box[0] <= inner[0] and inner[2] <= box[2]


def test_corrected_words_sit_on_the_ocr_line_they_align_with(corrected_page, tmp_path, run_export):
    page, edit = corrected_page
    [root] = pages_of(run_export("hocr", [page], tmp_path)).values()
    lines = by_class(root, "ocr_line")
    text_lines = [line for line in page.text.split("\n") if line.strip()]
    assert len(lines) == len(text_lines)
    ocr = ocr_lines(page.boxes)
    mapping = align_lines(page.text.split("\n"), ocr)
    nonblank = [i for i, line in enumerate(page.text.split("\n")) if line.strip()]
    for element, index in zip(lines, nonblank, strict=True):
        words = [w.text for w in element if w.get("class") == "ocrx_word"]
        assert words == page.text.split("\n")[index].split()
        if mapping[index] is not None:
            assert bbox(element) == ocr[mapping[index]].box
    changed = next(w for w in by_class(root, "ocrx_word") if w.text == edit["changed_word"])
    ocr_word = ocr[mapping[edit["changed"]]].words[1]
    assert bbox(changed) == (ocr_word.left, ocr_word.top, ocr_word.right, ocr_word.bottom)
    assert "x_wconf 100" in changed.get("title")
    added = lines[nonblank.index(edit["added"])]
    merged = lines[nonblank.index(edit["merged"])]
    assert bbox(added)[1] >= bbox(merged)[3]


def test_text_xml_forbids_is_dropped_and_markup_escaped(ocr_pages, tmp_path, run_export):
    page = ocr_pages["devanagari"]
    page = page.__class__(**{**page.__dict__, "text": "a <b> & c\x0c\x00 \"d'", "boxes": None})
    [root] = pages_of(run_export("hocr", [page], tmp_path)).values()
    assert [w.text for w in by_class(root, "ocrx_word")] == ["a", "<b>", "&", "c", "\"d'"]
