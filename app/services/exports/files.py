"""Where an export's parts and file live, and what the downloaded file is called.

An export is made under DATA_DIR/exports/<export id>/, where the export id is the id of the job
that started it (a resumed export keeps the id of the job it resumes, so the parts already
made are used as they are):

- ``parts/<position>.part``: one page's rendered part, written by its page task;
- ``parts/<position>.json``: what the part was made from (the page's id, version and status),
  so the finished file's fingerprint says exactly which text it holds;
- ``<file name>``: the assembled file, kept EXPORT_RETENTION_HOURS (app/services/retention.py);
  the parts are removed once it is made.

Every file is written under a temporary name and renamed into place, so a part or a file that
exists is whole, whatever killed its writer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app

from app.exports import FORMATS, Format
from app.models import Job

#: The content type of a kept file whose format is no longer offered.
UNKNOWN_CONTENT_TYPE = "application/octet-stream"


def export_id(job: Job) -> str:
    """The export a job works on: its own, or that of the job it resumes."""
    return (job.options or {}).get("export_of") or job.id


def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def export_dir(export: str) -> Path:
    return data_dir() / "exports" / export


def parts_dir(export: str) -> Path:
    return export_dir(export) / "parts"


def part_path(export: str, position: int) -> Path:
    return parts_dir(export) / f"{position:06d}.part"


def part_source_path(export: str, position: int) -> Path:
    return parts_dir(export) / f"{position:06d}.json"


def file_name(slug: str, fmt: Format) -> str:
    """`<slug>.<extension>`, or `<slug>-<format>.<extension>` when the format's name is not
    its extension (hOCR in a ZIP: `<slug>-hocr.zip`), so two formats never share a name."""
    if fmt.name == fmt.extension:
        return f"{slug}.{fmt.extension}"
    return f"{slug}-{fmt.name}.{fmt.extension}"


def content_type(format_name: str) -> str:
    fmt = FORMATS.get(format_name)
    return fmt.content_type if fmt is not None else UNKNOWN_CONTENT_TYPE


def download_name(slug: str, format_name: str, stored: str) -> str:
    fmt = FORMATS.get(format_name)
    return file_name(slug, fmt) if fmt is not None else Path(stored).name


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent or whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def temporary_beside(path: Path) -> Path:
    """A fresh name in `path`'s directory for writing `path` before renaming it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    os.close(handle)
    return Path(temporary)
