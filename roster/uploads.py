"""Uploaded spreadsheets, checked before any reader opens them: the file's size, its number of rows, and what an
XLSX file unpacks to.

An XLSX file is a zip of XML parts. Two kinds of small file can take a worker's memory: a zip bomb (parts that
unpack a thousand times larger), and a sheet whose few cells lie far apart (A1 and XFD1048576): the XLSX reader
(calamine) holds a sheet as a dense grid of 32 bytes a cell and aborts the whole process when it cannot allocate one
(tafia/calamine#693). So before reading, `check_upload` adds up what the parts declare they unpack to (the zip
readers stop at the declared size) and how tightly they are packed, and finds the last row and column of every part
that holds cells.

Every import reads its file through `roster.importing.read_table`, which calls `check_upload` and counts the rows
with `rows_within_limit`; the admin upload forms call `check_upload` as well, so that a refused file is not even
stored. Limits: settings.UPLOAD_MAX_BYTES and settings.UPLOAD_MAX_ROWS.

Where an upload waits on disk: import-export keeps a checked file in the temporary folder until it is confirmed
(`ImportTempStorage`, under a prefix of ours), and Django spools uploads over FILE_UPLOAD_MAX_MEMORY_SIZE to
FILE_UPLOAD_TEMP_DIR for the length of a request. `upload_temp_files_sweep` removes the ones left behind.
May import: nothing of ours (bottom layer).
"""

from __future__ import annotations

import hashlib
import io
import re
import string
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from django.conf import settings
from django.utils.translation import gettext as _
from import_export.tmp_storages import TempFolderStorage

ZIP_MAGIC = b"PK\x03\x04"
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # a 200,000-row roster saved by openpyxl unpacks to 115 MB
MAX_PACKING_RATIO = 100  # sheets pack 5 to 20 times; a zip bomb a thousand times and more
RATIO_FROM_BYTES = 1024 * 1024  # small parts (styles, themes) may pack tighter and unpack to nothing much
MAX_SHEET_CELLS = 6_000_000  # rows x columns the reader will hold: about 190 MB (200,000 rows of 30 columns)
CHUNK = 8 * 1024 * 1024

# Where every writer (Excel, WPS, LibreOffice, openpyxl, POI) puts a cell's and a row's position: first, as r="…".
_CELL_REF = re.compile(rb'<c r="([A-Za-z]+[0-9]+)"')
_ROW_REF = re.compile(rb'<row r="([0-9]+)"')
_CELL_TAG = re.compile(rb"<c[\s/>]")
_ROW_TAG = re.compile(rb"<row[\s/>]")
_PREFIXED_TAG = re.compile(rb":(?:c|row)[\s/>]")  # e.g. <x:c …> (OpenXML SDK); or text that looks like one
_REF = re.compile(r"([A-Za-z]*)([0-9]+)")
_LETTERS, _DIGITS = string.ascii_letters.encode(), string.digits.encode()


class FileRefused(Exception):
    """The whole file is refused before anything is read into the database (size, encoding, format, columns)."""


def check_upload(file: bytes | BinaryIO) -> None:
    """Refuse (FileRefused, saying why and what to do) a file larger than settings.UPLOAD_MAX_BYTES, or an XLSX
    file that unpacks too large, is packed like a zip bomb, or has cells beyond the row limit or a grid too large.

    `file`: the bytes, or a seekable binary file such as an UploadedFile (left at its start). A file that is not
    a zip, or a damaged one, passes here: the reader refuses it with its own message.
    """
    if isinstance(file, bytes | bytearray | memoryview):
        size, data = len(file), file
    else:
        file.seek(0, io.SEEK_END)
        size, data = file.tell(), None
        file.seek(0)
    if size > settings.UPLOAD_MAX_BYTES:
        raise FileRefused(
            _("The file is larger than %(limit)d MB; split it by school or grade.")
            % {"limit": settings.UPLOAD_MAX_BYTES // (1024 * 1024)}
        )
    if data is None:
        data = file.read()
        file.seek(0)
    if data[:4] == ZIP_MAGIC:
        _check_xlsx(data)


_passed: dict[bytes, None] = {}  # the latest XLSX files that passed, by digest of their content and the limits
_passed_lock = threading.Lock()


def _check_xlsx(data: bytes) -> None:
    """`_check_zip`, once per process for the same content and limits: the admin's upload form and then the reader
    check the same file in one request."""
    limits = (settings.UPLOAD_MAX_ROWS, MAX_UNPACKED_BYTES, MAX_PACKING_RATIO, MAX_SHEET_CELLS)
    key = hashlib.blake2b(data, digest_size=16).digest() + repr(limits).encode()
    with _passed_lock:
        if key in _passed:
            return
    _check_zip(io.BytesIO(data))
    with _passed_lock:
        _passed[key] = None
        if len(_passed) > 16:
            del _passed[next(iter(_passed))]


def rows_within_limit(rows: Iterable[list]) -> Iterator[list]:
    """The rows, refusing the file (FileRefused) at the first row beyond the header and settings.UPLOAD_MAX_ROWS."""
    limit = settings.UPLOAD_MAX_ROWS + 1  # the header row
    for count, row in enumerate(rows, start=1):
        if count > limit:
            raise _too_many_rows()
        yield row


def _too_many_rows() -> FileRefused:
    return FileRefused(
        _("The file has more than %(limit)s rows. Nothing was imported; split it by school or grade.")
        % {"limit": f"{settings.UPLOAD_MAX_ROWS:,}"}
    )


def _check_zip(stream: BinaryIO) -> None:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError):
        return
    with archive:
        parts = archive.infolist()
        # The reader takes any workbook it recognises, whatever the file is called: an XLSB or OpenDocument package
        # would be read by code this check does not model.
        names = {part.filename.lower() for part in parts}
        if "xl/workbook.xml" not in names or names & {"xl/workbook.bin", "content.xml"}:
            raise FileRefused(_("This is not an XLSX workbook. Save it from Excel or WPS as XLSX, or as CSV."))
        packed_tight = any(
            p.file_size > RATIO_FROM_BYTES and p.file_size > MAX_PACKING_RATIO * max(p.compress_size, 1) for p in parts
        )
        if packed_tight or sum(p.file_size for p in parts) > MAX_UNPACKED_BYTES:
            raise FileRefused(
                _(
                    "This spreadsheet would unpack to more than %(limit)d MB, or is packed far more tightly than a "
                    "spreadsheet is, so it was not opened. Nothing was imported. Save it again from Excel or WPS, "
                    "or split it by school or grade."
                )
                % {"limit": MAX_UNPACKED_BYTES // (1024 * 1024)}
            )
        for part in parts:
            try:
                last_row, last_column = _extent(archive, part)
            except (
                zipfile.BadZipFile,
                OSError,
                RuntimeError,
                EOFError,
                NotImplementedError,
                zlib.error,
                expat.ExpatError,
            ):
                # A part that fails its checksum, is encrypted or is not well-formed XML: never in a file Excel or
                # WPS saved, and the reader might still read what could not be checked here.
                raise _damaged() from None
            if last_row > settings.UPLOAD_MAX_ROWS + 1:
                raise _too_many_rows()
            if last_row * last_column > MAX_SHEET_CELLS:
                raise FileRefused(
                    _(
                        "A sheet of this file reaches row %(row)s and column %(column)s, more cells than can be read "
                        "(usually a stray value far below or to the right of the table). Nothing was imported; delete "
                        "those cells, or copy the table alone into a new file."
                    )
                    % {"row": f"{last_row:,}", "column": f"{last_column:,}"}
                )


def _damaged() -> FileRefused:
    return FileRefused(_("This file is damaged and cannot be read. Save it again from Excel or WPS."))


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def _extent(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> tuple[int, int]:
    """(last row, last column) of the cells in one part, as the reader would place them; (0, 0) for a part that is
    not XML or holds no cells."""
    with archive.open(part) as stream:
        head = stream.read(CHUNK)
        start = head[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        if start[:2] in (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00"):
            raise _damaged()  # XML in UTF-16, which the reader decodes and these patterns would not see
        if not start.startswith(b"<"):
            return 0, 0  # an image or other binary part: no XML reader opens it
        fast = _extent_of_plain_markup(head, stream)
    if fast is not None:
        return fast
    with archive.open(part) as stream:
        return _extent_parsed(stream)


def _extent_of_plain_markup(head: bytes, stream: BinaryIO) -> tuple[int, int] | None:
    """The extent read from the r="…" of every cell and row, at the speed of a regular expression; None when some
    cell or row is written otherwise (no position, a namespace prefix), which needs a real XML parser."""
    last_row = last_column = 0
    tail, chunk = b"", head
    while chunk:
        chunk = tail + chunk
        cut = chunk.rfind(b">") + 1  # every tag whole in one chunk
        chunk, tail = chunk[:cut], chunk[cut:]
        cells, rows = _CELL_REF.findall(chunk), _ROW_REF.findall(chunk)
        if (
            len(cells) != len(_CELL_TAG.findall(chunk))
            or len(rows) != len(_ROW_TAG.findall(chunk))
            or _PREFIXED_TAG.search(chunk)
        ):
            return None
        if cells:
            joined = b" ".join(cells)
            last_row = max(last_row, max(map(int, joined.translate(None, _LETTERS).split())))
            columns = set(joined.translate(None, _DIGITS).split())
            last_column = max(last_column, max(_column_number(c.decode()) for c in columns))
        if rows:
            last_row = max(last_row, max(map(int, rows)))
        chunk = stream.read(CHUNK)
    return last_row, last_column


def _extent_parsed(stream: BinaryIO) -> tuple[int, int]:
    """The extent by parsing the XML: any prefix, cells and rows without r="…" placed after the previous one."""
    at = {"row": 0, "column": 0, "last_row": 0, "last_column": 0}

    def start(name, attributes):
        local = name.rpartition(":")[2]
        if local not in ("c", "row"):
            return
        ref = _REF.fullmatch(attributes.get("r", "").strip())
        row = at["row"]
        if local == "row":
            at["row"] = row = int(ref[2]) if ref and not ref[1] else row + 1
            at["column"] = 0
        elif ref and ref[1]:
            row, at["column"] = int(ref[2]), _column_number(ref[1])
        else:
            at["column"] += 1
        at["last_row"], at["last_column"] = max(at["last_row"], row), max(at["last_column"], at["column"])

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.ParseFile(stream)  # ExpatError for XML that is not well-formed: refused, whatever the reader would do
    return at["last_row"], at["last_column"]


# --- Uploads waiting on disk ----------------------------------------------------------------------------------------

TEMP_PREFIX = "xinqiao-import-"
# Django's TemporaryUploadedFile: tempfile's "tmp" + random + ".upload" + the file's extension. Deleted when the
# request ends, unless the worker was killed during it.
DJANGO_UPLOAD_PATTERN = "tmp*.upload*"


class ImportTempStorage(TempFolderStorage):
    """import-export's temporary folder storage (settings.IMPORT_EXPORT_TMP_STORAGE_CLASS), with our prefix on the
    file's name so that `upload_temp_files_sweep` finds a check that was never confirmed, and nothing else."""

    def _open(self, mode="r"):
        if self.name:
            return super()._open(mode)
        tmp_file = tempfile.NamedTemporaryFile(prefix=TEMP_PREFIX, delete=False)  # noqa: SIM115 (the caller closes)
        self.name = tmp_file.name
        return tmp_file


def upload_temp_files_sweep(*, older_than: datetime) -> int:
    """Delete uploads left on disk since before `older_than`: import-export checks never confirmed and request
    spools of killed workers. Returns how many files were deleted.
    Access: the daily sweep (roster.import_jobs.sweep_abandoned_imports). Audit: none (files, not records)."""
    places = [
        (Path(tempfile.gettempdir()), TEMP_PREFIX + "*"),
        (Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir()), DJANGO_UPLOAD_PATTERN),
    ]
    limit, removed = older_than.timestamp(), 0
    for folder, pattern in places:
        for path in folder.glob(pattern):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except OSError:  # gone meanwhile, or another account's file in a shared /tmp
                continue
    return removed
