"""What may be uploaded as a book and how it is stored (app/sources.py): several page images,
ZIPs of them, and every way a ZIP can be hostile."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from app import sources
from app.rendering import SourceDocument
from app.sources import UnusableSource, Upload, natural_key, page_images, store, stored_source


def png(size=(60, 80), mode="L", dpi=300) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 255 if mode != "RGB" else (250, 240, 230)).save(
        out, format="PNG", dpi=(dpi, dpi)
    )
    return out.getvalue()


def jpeg(size=(60, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 190, 180)).save(out, format="JPEG", dpi=(300, 300))
    return out.getvalue()


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def sizes_of(folder: Path) -> list[tuple[int, int]]:
    sizes = []
    for path in page_images(folder):
        with Image.open(path) as image:
            sizes.append(image.size)
    return sizes


def upload(name: str, data: bytes) -> Upload:
    return Upload(name, io.BytesIO(data))


def store_in(tmp_path: Path, *uploads: Upload) -> sources.StoredSource:
    staging = tmp_path / "staging"
    staging.mkdir()
    return store(list(uploads), staging)


def refusal(tmp_path: Path, *uploads: Upload) -> str:
    with pytest.raises(UnusableSource) as caught:
        store_in(tmp_path, *uploads)
    message = str(caught.value)
    assert str(tmp_path) not in message and "Traceback" not in message
    return message


# -- natural order -----------------------------------------------------------------------


def test_natural_order_puts_page2_before_page10():
    names = ["page10.png", "page2.png", "Page1.png", "page2a.png", "page02b.png", "cover.png"]
    assert sorted(names, key=natural_key) == [
        "cover.png",
        "Page1.png",
        "page2.png",
        "page2a.png",
        "page02b.png",
        "page10.png",
    ]


def test_natural_order_compares_every_run_of_digits():
    names = ["vol2/p10.tif", "vol10/p1.tif", "vol2/p9.tif", "vol1/p100.tif"]
    assert sorted(names, key=natural_key) == [
        "vol1/p100.tif",
        "vol2/p9.tif",
        "vol2/p10.tif",
        "vol10/p1.tif",
    ]


# -- several page images -----------------------------------------------------------------


def test_several_images_are_stored_as_a_folder_in_natural_order(tmp_path):
    """Chosen in any order, page images are numbered by natural file-name order, each kept in
    its own format; the folder is what a redelivered split finds again."""
    chosen = [
        upload("page10.png", png((10, 10))),
        upload("page2.jpg", jpeg((20, 20))),
        upload("page1.png", png((30, 30))),
    ]
    stored = store_in(tmp_path, *chosen)
    assert stored.path == tmp_path / "staging" / "source"
    assert [p.name for p in page_images(stored.path)] == ["0001.png", "0002.jpg", "0003.png"]
    assert sizes_of(stored.path) == [(30, 30), (20, 20), (10, 10)]
    assert stored.label == "3 page images (page1.png … page10.png)"
    assert stored_source(tmp_path / "staging") == stored.path
    assert not list(stored.path.glob(".*")), "a partial file was left"


def test_images_of_different_sizes_and_modes_are_fine(tmp_path):
    stored = store_in(
        tmp_path,
        upload("a.png", png((100, 50), "1")),
        upload("b.png", png((40, 90), "RGB")),
        upload("c.tif", _tiff(Image.new("L", (70, 70), 128))),
    )
    assert len(page_images(stored.path)) == 3


def test_paths_are_read_only_when_stored(tmp_path):
    """The CLI passes paths, not open files: a folder of a thousand pages opens one at a time."""
    files = []
    for n in (3, 1, 2):
        path = tmp_path / f"scan{n}.png"
        path.write_bytes(png((n * 10, 10)))
        files.append(Upload(path.name, path))
    stored = store_in(tmp_path, *files)
    assert [width for width, _ in sizes_of(stored.path)] == [10, 20, 30]


def _tiff(*frames: Image.Image) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=list(frames[1:]))
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("notes.txt", b"not an image at all", ["notes.txt", "not a PNG, JPEG or TIFF"]),
        ("book.pdf", b"%PDF-1.4\n...", ["book.pdf", "is a PDF", "on its own"]),
        ("more.zip", zip_of({"p.png": png()}), ["more.zip", "archive"]),
        ("empty.png", b"", ["empty.png", "empty"]),
        ("anim.gif", b"GIF89a" + png()[6:], ["anim.gif"]),
        ("two.tif", _tiff(Image.new("L", (9, 9)), Image.new("L", (9, 9))), ["two.tif", "2 pages"]),
        ("cut.png", png()[:60], ["cut.png", "damaged"]),
    ],
    ids=["text", "pdf", "zip", "empty", "gif", "multi-page-tiff", "truncated"],
)
def test_a_file_among_page_images_that_is_not_one_is_named(tmp_path, name, data, words):
    message = refusal(tmp_path, upload("page1.png", png()), upload(name, data))
    for word in words:
        assert word in message, message


def test_nothing_chosen_is_refused(tmp_path):
    assert "Choose" in refusal(tmp_path)


def test_more_files_than_a_book_has_pages_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_PAGE_FILES", 3)
    message = refusal(tmp_path, *[upload(f"p{n}.png", png()) for n in range(4)])
    assert "4 files" in message and "at most 3" in message
    assert list((tmp_path / "staging").iterdir()) == []


# -- a ZIP of page images ----------------------------------------------------------------


def test_zip_of_page_images_is_unpacked_in_natural_order(tmp_path):
    """Members in a folder, in any order, with the junk archivers add, become the pages."""
    archive = zip_of(
        {
            "book/": b"",
            "book/p10.png": png((10, 10)),
            "book/p9.jpg": jpeg((9, 9)),
            "book/p1.tif": _tiff(Image.new("1", (1, 1))),
            "__MACOSX/book/._p1.tif": b"\0\5\26\7 resource fork",
            "book/.DS_Store": b"\0\0\0\1Bud1",
            "book/Thumbs.db": b"\xd0\xcf\x11\xe0",
        }
    )
    stored = store_in(tmp_path, upload("book.zip", archive))
    assert [p.name for p in page_images(stored.path)] == ["0001.tif", "0002.jpg", "0003.png"]
    assert [width for width, _ in sizes_of(stored.path)] == [1, 9, 10]
    assert stored.label == "book.zip"
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["source"]


def test_a_zip_is_never_split_itself(tmp_path):
    """Only unpacked pages are ever split: the renderer refuses a ZIP it is handed."""
    path = tmp_path / "book.zip"
    path.write_bytes(zip_of({"p1.png": png()}))
    with pytest.raises(UnusableSource, match="unpacked"):
        SourceDocument(path)


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ({"../evil.png": png()}, ["leaves its folder", "../evil.png"]),
        ({"pages/../../evil.png": png()}, ["leaves its folder"]),
        ({"/etc/evil.png": png()}, ["leaves its folder", "/etc/evil.png"]),
        ({"C:\\evil.png": png()}, ["leaves its folder"]),
        ({"p1.png": png(), "inner.zip": zip_of({"p2.png": png()})}, ["another archive", "inner"]),
        ({"p1.png": png(), "more.tar.gz": b"\x1f\x8b\x08"}, ["another archive"]),
        ({"p1.png": png(), "disguised.png": zip_of({"p.png": png()})}, ["archive", "disguised"]),
        ({}, ["no page images"]),
        ({"empty/": b"", ".hidden.png": png()}, ["no page images"]),
        ({"p1.png": png(), "notes/readme.txt": b"scanned 2024"}, ["notes/readme.txt"]),
        ({"p1.png": png(), "p2.pdf": b"%PDF-1.7\n"}, ["p2.pdf", "is a PDF"]),
    ],
    ids=[
        "dot-dot",
        "dot-dot-inside",
        "absolute",
        "drive-letter",
        "nested-zip",
        "nested-tar",
        "nested-zip-named-png",
        "empty-zip",
        "only-junk",
        "text-member",
        "pdf-member",
    ],
)
def test_hostile_or_useless_zip_is_refused_by_name(tmp_path, members, words):
    message = refusal(tmp_path, upload("book.zip", zip_of(members)))
    for word in words:
        assert word in message, message


def test_zip_bomb_is_refused_from_its_directory_before_unpacking(tmp_path, monkeypatch):
    """40 MiB of zeros pack to 40 kB: no page image packs 1000:1, so it is never unpacked."""
    unpacked = []
    monkeypatch.setattr(
        sources, "_extract_within_limits", lambda *args: unpacked.append(args) or None
    )
    archive = zip_of({"p1.png": png(), "bomb.png": b"\0" * (40 * 1024 * 1024)})
    assert len(archive) < 200_000
    message = refusal(tmp_path, upload("book.zip", archive))
    assert "bomb.png" in message and "ZIP bomb" in message
    assert unpacked == []


def test_member_declaring_more_than_a_page_may_have_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ZIP_MAX_MEMBER_BYTES", 1000)
    message = refusal(tmp_path, upload("book.zip", zip_of({"big.png": png((400, 400), "RGB")})))
    assert "big.png" in message and "MiB" in message


def test_zip_unpacking_to_more_than_a_book_may_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ZIP_MAX_TOTAL_BYTES", 2 * len(png()))
    archive = zip_of({f"p{n}.png": png() for n in range(3)})
    assert "ZIP bomb" in refusal(tmp_path, upload("book.zip", archive))


def test_member_giving_more_than_it_declares_is_stopped(tmp_path):
    """A directory that understates a member's size: unpacking stops at the declared size
    and the ZIP is refused, never written past it."""
    honest = zip_of({"p1.png": png((300, 300), "RGB")}, compression=zipfile.ZIP_STORED)
    declared = len(png((300, 300), "RGB"))
    lying = honest.replace(declared.to_bytes(4, "little"), (declared // 2).to_bytes(4, "little"))
    assert lying != honest
    message = refusal(tmp_path, upload("book.zip", lying))
    assert "ZIP" in message
    assert not list((tmp_path / "staging" / "source").glob("0001.*"))


def test_encrypted_zip_is_refused(tmp_path):
    archive = bytearray(zip_of({"p1.png": png()}))
    # Set the "encrypted" flag in the local and central headers, as a password-protected
    # archiver does (zipfile cannot write encrypted ZIPs itself).
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = archive.index(signature) + offset
        archive[at] |= 0x1
    assert "encrypted" in refusal(tmp_path, upload("book.zip", bytes(archive)))


def test_damaged_zip_is_refused(tmp_path):
    archive = zip_of({"p1.png": png(), "p2.png": png()})
    message = refusal(tmp_path, upload("book.zip", archive[: len(archive) - 30]))
    assert "ZIP" in message and "damaged" in message


def test_a_single_upload_keeps_its_file(tmp_path):
    """A PDF or one image is kept as the file it is, named source.<suffix>."""
    stored = store_in(tmp_path, upload("My Scan.PNG", png()))
    assert stored.path == tmp_path / "staging" / "source.png"
    assert stored.label == "My Scan.PNG"
    assert stored_source(tmp_path / "staging") == stored.path


def test_missing_source_is_a_readable_refusal(tmp_path):
    with pytest.raises(UnusableSource, match="missing"):
        stored_source(tmp_path)
