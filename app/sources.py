"""What people upload as a book, checked and stored so that the split can read it again.

A book comes as a PDF, a multi-page TIFF, one page image, several page images at once, or a
ZIP of page images. A PDF or a single image is kept as the file it is (`source.pdf`,
`source.tif`...); several images, and the members of a ZIP, are kept as a folder of page
images `source/0001.png, 0002.jpg...` numbered in natural file-name order (page2 before
page10). Either way the stored source is all a split needs: a split redelivered after a
crash finds it where the upload left it.

Everything is checked while it is stored, so that bad input is refused before a project
exists: a ZIP is read member by member within limits on count, declared and actual sizes and
compression ratio (a ZIP bomb is refused, not unpacked), and member paths that leave the
archive's folder, nested archives and members that are not images are refused by name.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import stat
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

#: The folder of page images that several uploaded images, or a ZIP, are stored as.
SOURCE_FOLDER = "source"
#: Formats a page image may be in (Pillow's names), and the suffix each is stored under.
PAGE_IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif"}
#: More pages than any book has: a ZIP or a selection with more is refused unread.
MAX_PAGE_FILES = 5000
#: A page image in a ZIP may unpack to this much: a 600 DPI A3 colour scan, uncompressed,
#: is 210 MB.
ZIP_MAX_MEMBER_BYTES = 512 * 1024 * 1024
#: What a whole ZIP may unpack to.
ZIP_MAX_TOTAL_BYTES = 16 * 1024 * 1024 * 1024
#: Page images are compressed already (PNG, JPEG, Group 4): a member that packs much better
#: than this is a bomb. Small members are exempt: a blank uncompressed page packs 1000:1.
ZIP_MAX_RATIO = 100
ZIP_RATIO_EXEMPT_BYTES = 32 * 1024 * 1024
#: Names that archivers and file managers add beside the pages, skipped without a word.
JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".cbz", ".cbr"}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"II*\0", b"MM\0*")
COPY_CHUNK = 1024 * 1024
# Pillow refuses images whose header claims more pixels than this (decompression bombs).
Image.MAX_IMAGE_PIXELS = 200_000_000


class UnusableSource(ValueError):
    """The uploaded file cannot be turned into pages; the message is for the user."""


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name as the user gave it, and its bytes (a stream or a path)."""

    filename: str
    content: BinaryIO | Path


@dataclass(frozen=True)
class StoredSource:
    #: The PDF or image file, or the folder of page images.
    path: Path
    #: What the user uploaded, in words: a file name, or the first and last of several.
    label: str


def natural_key(name: str) -> tuple:
    """Sort key putting page2 before page10: runs of digits compare as numbers."""
    folded = name.casefold()
    parts = re.split(r"(\d+)", folded)
    # The name itself comes last, to order names that differ only in leading zeros.
    return (*((0, int(part)) if part.isdigit() else (1, part) for part in parts), (2, folded))


def sniff_kind(path: Path) -> str:
    """Whether the file is a "pdf", a "zip" or an "image", judged by content, not by name."""
    with path.open("rb") as fh:
        head = fh.read(1024)
    if not head:
        raise UnusableSource("The file is empty (0 bytes).")
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    try:
        with pillow_quietly(), Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError:
        raise UnusableSource(
            "The file is neither a PDF, a ZIP, nor a PNG, JPEG or TIFF image."
        ) from None
    except Exception as exc:  # noqa: BLE001 -- Pillow's parsers raise many types on hostile data
        raise UnusableSource(f"The image is damaged and cannot be read ({exc}).") from None
    return "image"


@contextlib.contextmanager
def pillow_quietly() -> Iterator[None]:
    """Pillow warns about damaged metadata it works around; for an upload what counts is the
    outcome (an image that opens, or UnusableSource), while a decompression bomb is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def page_images(folder: Path) -> list[Path]:
    """The page images of a stored folder source, in page order."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )


def stored_source(project_directory: Path) -> Path:
    """Where create_project stored the project's source (a file, or a folder of images)."""
    folder = project_directory / SOURCE_FOLDER
    if folder.is_dir():
        return folder
    files = sorted(project_directory.glob(f"{SOURCE_FOLDER}.*"))
    if not files:
        raise UnusableSource("The uploaded file is missing from the data directory.")
    return files[0]


def store(uploads: Sequence[Upload], directory: Path) -> StoredSource:
    """Write the uploads into `directory` as a source the split can read, checking them.

    Raises UnusableSource, having written nothing that the caller must keep: the caller
    removes `directory` (a staging directory) on failure.
    """
    if not uploads:
        raise UnusableSource("Choose a PDF, a ZIP, or one or more page images to upload.")
    if len(uploads) > MAX_PAGE_FILES:
        raise UnusableSource(
            f"{len(uploads)} files were chosen; a book has at most {MAX_PAGE_FILES} pages."
        )
    if len(uploads) == 1:
        return _store_one(uploads[0], directory)
    ordered = sorted(uploads, key=lambda upload: natural_key(upload.filename))
    folder = directory / SOURCE_FOLDER
    folder.mkdir()
    for number, upload in enumerate(ordered, start=1):
        shown = _shown_name(upload.filename)
        partial = folder / f".{number:04d}.partial"
        _copy(upload.content, partial)
        _store_page_image(partial, folder, number, shown)
    first, last = _shown_name(ordered[0].filename), _shown_name(ordered[-1].filename)
    return StoredSource(folder, f"{len(ordered)} page images ({first} … {last})")


def _store_one(upload: Upload, directory: Path) -> StoredSource:
    stored = directory / (SOURCE_FOLDER + _suffix(upload.filename))
    _copy(upload.content, stored)
    label = _shown_name(upload.filename) or stored.name
    if sniff_kind(stored) != "zip":
        return StoredSource(stored, label)
    folder = directory / SOURCE_FOLDER
    folder.mkdir()
    try:
        _unpack_zip(stored, folder)
    finally:
        stored.unlink()
    return StoredSource(folder, label)


def _copy(content: BinaryIO | Path, out: Path) -> None:
    if isinstance(content, Path):
        with content.open("rb") as source, out.open("wb") as sink:
            shutil.copyfileobj(source, sink, length=COPY_CHUNK)
    else:
        with out.open("wb") as sink:
            shutil.copyfileobj(content, sink, length=COPY_CHUNK)


def _store_page_image(partial: Path, folder: Path, number: int, shown: str) -> Path:
    """Check that `partial` is one page image and give it its page number in `folder`."""
    with partial.open("rb") as fh:
        head = fh.read(1024)
    if not head:
        raise UnusableSource(f"{shown} is empty (0 bytes).")
    if b"%PDF-" in head:
        raise UnusableSource(f"{shown} is a PDF: upload a PDF on its own, not among page images.")
    if head.startswith(ARCHIVE_MAGIC):
        raise UnusableSource(
            f"{shown} is an archive: put its page images in the upload, not an archive in it."
        )
    try:
        with pillow_quietly(), Image.open(partial) as image:
            image_format, frames = image.format, getattr(image, "n_frames", 1)
            image.verify()
    except UnidentifiedImageError:
        if head.startswith(IMAGE_MAGIC):
            raise UnusableSource(f"{shown} is a damaged image and cannot be read.") from None
        raise UnusableSource(f"{shown} is not a PNG, JPEG or TIFF image.") from None
    except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
        raise UnusableSource(f"{shown} is a damaged image and cannot be read ({exc}).") from None
    if image_format not in PAGE_IMAGE_FORMATS:
        raise UnusableSource(
            f"{shown} is a {image_format} image; page images are PNG, JPEG or TIFF."
        )
    if frames != 1:
        raise UnusableSource(f"{shown} holds {frames} pages: upload a multi-page TIFF on its own.")
    final = folder / f"{number:04d}{PAGE_IMAGE_FORMATS[image_format]}"
    partial.rename(final)
    return final


def _unpack_zip(archive: Path, folder: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _page_members(zf)
            for number, member in enumerate(members, start=1):
                shown = _shown_name(member.filename, keep_dirs=True)
                partial = folder / f".{number:04d}.partial"
                _extract_within_limits(zf, member, partial, shown)
                _store_page_image(partial, folder, number, shown)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        why = "" if "not a zip file" in str(exc) else f" ({exc})"  # zipfile's word for "cut"
        raise UnusableSource(f"The ZIP file is damaged and cannot be read{why}.") from None
    except RuntimeError as exc:  # zipfile's "is encrypted, password required"
        raise UnusableSource(f"The ZIP file cannot be read ({exc}).") from None


def _page_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The ZIP's members that are pages, in natural order; refuses a bomb or escaping paths
    from the directory alone, before a byte is unpacked."""
    infos = zf.infolist()
    if len(infos) > MAX_PAGE_FILES * 2:
        raise UnusableSource(
            f"The ZIP holds {len(infos)} files; a book has at most {MAX_PAGE_FILES} pages."
        )
    members, total = [], 0
    for info in infos:
        name = info.filename
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
            shown = _shown_name(name, keep_dirs=True)
            raise UnusableSource(
                f"The ZIP holds a path that leaves its folder ({shown}); it is refused."
            )
        if info.is_dir() or any(
            part.startswith(".") or part.casefold() in JUNK_NAMES for part in path.parts
        ):
            continue
        shown = _shown_name(name, keep_dirs=True)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnusableSource(f"The ZIP holds a link ({shown}), not a page image.")
        if info.flag_bits & 0x1:
            raise UnusableSource(f"The ZIP is encrypted ({shown}); upload an unlocked one.")
        if path.suffix.casefold() in ARCHIVE_SUFFIXES:
            raise UnusableSource(
                f"The ZIP holds another archive ({shown}): put all page images in one ZIP."
            )
        if info.file_size > ZIP_MAX_MEMBER_BYTES:
            raise UnusableSource(
                f"{shown} in the ZIP unpacks to {info.file_size // 2**20} MiB, over the "
                f"{ZIP_MAX_MEMBER_BYTES // 2**20} MiB a page image may have."
            )
        if info.file_size > ZIP_RATIO_EXEMPT_BYTES and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise UnusableSource(
                f"{shown} in the ZIP is compressed {info.file_size // max(info.compress_size, 1)}"
                " times: no page image packs that well, so the ZIP is refused as a ZIP bomb."
            )
        total += info.file_size
        members.append(info)
    if total > ZIP_MAX_TOTAL_BYTES:
        raise UnusableSource(
            f"The ZIP unpacks to {total // 2**30} GiB, over the "
            f"{ZIP_MAX_TOTAL_BYTES // 2**30} GiB a book may have; it is refused as a ZIP bomb."
        )
    if not members:
        raise UnusableSource("The ZIP holds no page images (PNG, JPEG or TIFF files).")
    if len(members) > MAX_PAGE_FILES:
        raise UnusableSource(
            f"The ZIP holds {len(members)} page images; a book has at most {MAX_PAGE_FILES}."
        )
    return sorted(members, key=lambda info: natural_key(info.filename))


def _extract_within_limits(
    zf: zipfile.ZipFile, member: zipfile.ZipInfo, out: Path, shown: str
) -> None:
    """Unpack one member, stopping as soon as it gives more than it declared: the directory's
    sizes are the attacker's word, the bytes that come out are the fact."""
    written = 0
    with zf.open(member) as source, out.open("wb") as sink:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > member.file_size or written > ZIP_MAX_MEMBER_BYTES:
                raise UnusableSource(
                    f"{shown} in the ZIP unpacks to more than it declares; "
                    "the ZIP is refused as a ZIP bomb."
                )
            sink.write(chunk)


def _shown_name(filename: str, *, keep_dirs: bool = False) -> str:
    """A file name as the message shows it: without the folders a browser may send, and
    cut to a readable length."""
    name = (filename or "").replace("\\", "/")
    if not keep_dirs:
        name = name.rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable())
    return name if len(name) <= 120 else name[:117] + "..."


def _suffix(filename: str) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"
