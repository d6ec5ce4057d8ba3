"""TEI P5: a well-formed document with a page break before each page's paragraphs."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

TEI = "{http://www.tei-c.org/ns/1.0}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def words(text: str) -> list[str]:
    return text.split()


def test_the_header_names_the_project_source_languages_and_date(
    ocr_pages, run_export, meta, tmp_path
):
    out = run_export("tei", [ocr_pages["devanagari"]], tmp_path, meta(("san", "eng")))
    root = etree.parse(str(out)).getroot()
    assert root.tag == f"{TEI}TEI" and root.get(XML_LANG) == "sa"
    header = root.find(f"{TEI}teiHeader")
    assert header.findtext(f"{TEI}fileDesc/{TEI}titleStmt/{TEI}title") == "The <Linn> & Co. book"
    assert header.findtext(f".//{TEI}sourceDesc//{TEI}idno") == "linn & co.pdf"
    date = header.find(f".//{TEI}publicationStmt//{TEI}date")
    assert date.get("when") == "2026-12-02T17:30:00+00:00"
    languages = header.findall(f"{TEI}profileDesc/{TEI}langUsage/{TEI}language")
    assert [(e.get("ident"), e.text) for e in languages] == [
        ("sa", "Sanskrit"),
        ("en", "English"),
    ]


def test_one_page_break_per_page_then_its_text(ocr_pages, run_export, tmp_path):
    pages = [
        ocr_pages["bilevel"],
        replace(ocr_pages["devanagari"], number=2),
        replace(ocr_pages["grey_jpeg"], number=3),
    ]
    root = etree.parse(str(run_export("tei", pages, tmp_path))).getroot()
    body = root.find(f"{TEI}text/{TEI}body")
    breaks = body.findall(f"{TEI}pb")
    assert [pb.get("n") for pb in breaks] == ["1", "2", "3"]
    assert breaks[0].get("facs") == "bilevel.png"
    # The text between one page break and the next is that page's text, word for word.
    per_page: list[list[str]] = []
    for child in body:
        if child.tag == f"{TEI}pb":
            per_page.append([])
        else:
            assert child.tag == f"{TEI}p"
            per_page[-1].extend(words("".join(child.itertext())))
    assert per_page == [words(page.text) for page in pages]


def test_blank_lines_make_paragraphs_and_line_breaks_lb(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["bilevel"], text="one\ntwo\n\n\nthree\r\nfour\n\nfive\n")
    body = etree.parse(str(run_export("tei", [page], tmp_path))).getroot().find(f".//{TEI}body")
    paragraphs = body.findall(f"{TEI}p")
    assert len(paragraphs) == 3
    assert [len(p.findall(f"{TEI}lb")) for p in paragraphs] == [1, 1, 0]
    assert [" ".join("".join(p.itertext()).split()) for p in paragraphs] == [
        "one two",
        "three four",
        "five",
    ]


def test_markup_is_escaped_and_characters_xml_forbids_dropped(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["bilevel"], text="a <p> & </TEI>\x00\x0b b\ufffe ]]> c")
    body = etree.parse(str(run_export("tei", [page], tmp_path))).getroot().find(f".//{TEI}body")
    [paragraph] = body.findall(f"{TEI}p")
    assert paragraph.text == "a <p> & </TEI> b ]]> c"


def test_a_book_without_pages_is_still_a_document(run_export, tmp_path):
    root = etree.parse(str(run_export("tei", [], tmp_path))).getroot()
    assert root.find(f".//{TEI}body/{TEI}p") is not None
