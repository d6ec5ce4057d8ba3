"""ALTO v4: a ZIP of XML pages with a String (and its box) for every word of the text."""

from __future__ import annotations

import zipfile
from dataclasses import replace

from lxml import etree

from app.text.alignment import align_lines, ocr_lines

ALTO = "{http://www.loc.gov/standards/alto/ns-v4#}"


def box(element) -> tuple[int, int, int, int]:
    left, top = int(element.get("HPOS")), int(element.get("VPOS"))
    return (left, top, left + int(element.get("WIDTH")), top + int(element.get("HEIGHT")))


def pages_of(path):
    with zipfile.ZipFile(path) as archive:
        return {name: etree.fromstring(archive.read(name)) for name in archive.namelist()}


def test_one_file_per_page_with_the_image_size_in_pixels(ocr_pages, run_export, tmp_path):
    pages = [ocr_pages["bilevel"], replace(ocr_pages["grey_jpeg"], number=2)]
    files = pages_of(run_export("alto", pages, tmp_path))
    assert sorted(files) == ["linn-book/linn-book-0001.xml", "linn-book/linn-book-0002.xml"]
    for (_name, root), page in zip(sorted(files.items()), pages, strict=True):
        assert root.tag == f"{ALTO}alto"
        assert root.findtext(f"{ALTO}Description/{ALTO}MeasurementUnit") == "pixel"
        assert root.findtext(f".//{ALTO}fileName") == page.image_path.name
        [element] = root.iter(f"{ALTO}Page")
        assert (int(element.get("WIDTH")), int(element.get("HEIGHT"))) == (page.width, page.height)
        assert element.get("PHYSICAL_IMG_NR") == str(page.number)
        [space] = element.iter(f"{ALTO}PrintSpace")
        assert box(space) == (0, 0, page.width, page.height)


def test_every_word_is_a_string_inside_its_line_and_the_page(
    ocr_pages, corrected_page, typed_page, tmp_path, run_export
):
    pages = {**ocr_pages, "corrected": corrected_page[0], "typed": typed_page("colour_png")}
    for name, page in pages.items():
        [root] = pages_of(run_export("alto", [page], tmp_path / name)).values()
        strings = list(root.iter(f"{ALTO}String"))
        assert [s.get("CONTENT") for s in strings] == page.text.split()
        for line in root.iter(f"{ALTO}TextLine"):
            outer = box(line)
            for string in line.iter(f"{ALTO}String"):
                inner = box(string)
                assert outer[0] <= inner[0] < inner[2] <= outer[2]
                assert 0 <= inner[1] < inner[3] <= page.height and inner[2] <= page.width
                assert 0 <= float(string.get("WC")) <= 1


def test_corrected_words_sit_on_the_ocr_line_they_align_with(corrected_page, tmp_path, run_export):
    page, edit = corrected_page
    [root] = pages_of(run_export("alto", [page], tmp_path)).values()
    lines = list(root.iter(f"{ALTO}TextLine"))
    text = page.text.split("\n")
    nonblank = [i for i, line in enumerate(text) if line.strip()]
    ocr = ocr_lines(page.boxes)
    mapping = align_lines(text, ocr)
    for element, index in zip(lines, nonblank, strict=True):
        assert [s.get("CONTENT") for s in element.iter(f"{ALTO}String")] == text[index].split()
        if mapping[index] is not None:
            assert box(element) == ocr[mapping[index]].box
    changed = next(
        s for s in root.iter(f"{ALTO}String") if s.get("CONTENT") == edit["changed_word"]
    )
    ocr_word = ocr[mapping[edit["changed"]]].words[1]
    assert box(changed) == (ocr_word.left, ocr_word.top, ocr_word.right, ocr_word.bottom)
    # ALTO's correction status: set on the words a person wrote, and only on them.
    assert changed.get("CS") == "true"
    typed = {s.get("CONTENT") for s in root.iter(f"{ALTO}String") if s.get("CS") == "true"}
    assert set(edit["added_text"].split()) <= typed
    changed_line = lines[nonblank.index(edit["changed"])]
    assert next(changed_line.iter(f"{ALTO}String")).get("CS") is None
    assert len(typed) < len(page.text.split()) / 2
    added, merged = lines[nonblank.index(edit["added"])], lines[nonblank.index(edit["merged"])]
    assert box(added)[1] >= box(merged)[3]


def test_a_page_never_ocrd_is_split_into_line_strips(typed_page, tmp_path, run_export):
    page = typed_page("grey_png")
    [root] = pages_of(run_export("alto", [page], tmp_path)).values()
    lines = list(root.iter(f"{ALTO}TextLine"))
    assert len(lines) == 3
    assert all(box(line)[0] == 0 and box(line)[2] == page.width for line in lines)
    tops = [box(line)[1] for line in lines]
    assert tops == sorted(tops) and tops[0] == 0


def test_an_empty_page_is_a_page_without_blocks(ocr_pages, tmp_path, run_export):
    page = replace(ocr_pages["bilevel"], text="")
    [root] = pages_of(run_export("alto", [page], tmp_path)).values()
    [space] = root.iter(f"{ALTO}PrintSpace")
    assert len(space) == 0
