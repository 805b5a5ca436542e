"""Streaming catalog readers: CSV/TSV, JSON Lines and Parquet, in chunks of records.

A reader never holds the whole file: it yields `RecordChunk`s of at most ``chunk_rows`` records. A record
that cannot be read (wrong number of fields, broken quote, bad encoding, invalid JSON) does not stop the
read: it is returned as a `BadRow` in its chunk, with the file, line and raw content, so nothing is lost.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import itertools
import json
import os
import re
import sys
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linnet.errors import CatalogError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
DEFAULT_CHUNK_ROWS = 50_000
_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                   ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

# what reading a damaged file raises: gzip's BadGzipFile (an OSError), EOFError, zlib.error; pyarrow's errors
# are ArrowException subclasses of OSError/ValueError
_UNREADABLE = (OSError, EOFError, zlib.error, ValueError)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long description is data, not an error


@dataclass
class BadRow:
    """One record that could not be used, with everything needed to find and fix it.

    Attributes:
        file: The catalog file.
        location: 1-based line number (CSV/TSV/JSONL, the header is line 1 of a CSV) or row number
            (Parquet), as named by ``location_kind``.
        product_id: The record's id when it could be read, else None.
        field: The column at fault, or None for the record as a whole.
        problem: What is wrong, in words.
        record: The raw record (dict of fields, list of fields or the line's text).
        last_line: The last line of a CSV record that spans several (quoted line breaks), else None.
    """

    file: str
    location: int
    product_id: str | None
    field: str | None
    problem: str
    record: Any = None
    location_kind: str = "line"
    last_line: int | None = None  # a CSV record's last line when it spans several (a quoted line break)

    def message(self) -> str:
        who = f" (id {self.product_id!r})" if self.product_id is not None else ""
        column = f" field {self.field!r}:" if self.field else ""
        return f"{self.file}: {self.location_kind} {self.location}{who}:{column} {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        if isinstance(record, dict):
            record = {key: _jsonable(value) for key, value in record.items()}
        elif isinstance(record, (list, tuple)):
            record = [_jsonable(value) for value in record]
        else:
            record = _jsonable(record)
        return {"file": self.file, self.location_kind: self.location, "id": self.product_id,
                "field": self.field, "problem": self.problem, "record": record}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        # surrogate escapes stand for undecodable bytes; keep them visible as \x.. escapes
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


@dataclass
class RecordChunk:
    """Records read from one stretch of a file: ``records[i]`` sits at ``locations[i]``.

    ``last_lines[i]`` (CSV/TSV only, else empty) is the last line of record ``i``: a quoted field may hold
    line breaks. Every other line of the file is the header, blank, or one bad row, so the spans of records
    and bad rows cover each non-blank line exactly once.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    locations: list[int] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    last_lines: list[int] = field(default_factory=list)
    #: The records as an Arrow table of the columns a reader was asked for by ``table_columns`` (a JSON Lines chunk
    #: Arrow read as the record reader would; ``records`` is then empty and ``locations`` numbers the table's rows).
    table: Any = None


def detect_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The catalog format from ``format`` or the file suffix (``.csv[.gz]``, ``.tsv``, ``.jsonl``, ``.parquet``)."""
    if format is not None:
        if format not in FORMATS:
            raise CatalogError(f"{path}: unknown catalog format {format!r}; choose from {FORMATS}")
        return format
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    raise CatalogError(f"{path}: cannot tell the format from the name; use .csv, .tsv, .jsonl or .parquet "
                       "(or pass format=)")


def _open_text(path: Path):
    # the caller closes the wrapper, which closes ``raw``
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")  # noqa: SIM115
    # Undecodable bytes become surrogate escapes so one bad row does not stop the file; rows holding
    # them are reported as bad rows.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _undecodable_field(values: Sequence[Any], names: Sequence[str] | None) -> str | None:
    try:  # one encode of the whole row is the fast path; look field by field only when it fails
        "\x1f".join(value for value in values if isinstance(value, str)).encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    for position, value in enumerate(values):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return names[position] if names is not None and position < len(names) else f"#{position + 1}"
    return None


def _lenient_row(line: str, delimiter: str) -> list[str] | None:
    try:
        return next(csv.reader([line], delimiter=delimiter), None)
    except csv.Error:
        return None


def suggest_column(name: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(columns), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class CatalogReader:
    """Reads a catalog in chunks of records (dicts keyed by column name).

    Args:
        path: A ``.csv``/``.tsv`` (optionally ``.gz``), ``.jsonl`` or ``.parquet`` file.
        format: Override the format sniffed from the suffix.
        chunk_rows: Records per chunk.
        columns: Read only these columns (Parquet reads no others; other formats drop the rest).
        known_columns: The file's columns, when the caller has already read them from this file (a second pass:
            skips the header read, which for JSON Lines parses up to ``chunk_rows`` records).
        line_range: ``(first, stop)``: a JSON Lines file skips the lines outside ``[first, stop)`` unparsed (a
            reader of one part of a file split by lines); other formats read every line, the caller keeps its part.
        table_columns: a JSON Lines file is parsed a chunk at a time by Arrow's JSON reader (C++, no Python per
            line) and the chunk comes as ``RecordChunk.table`` holding these columns (those the chunk has), when
            Arrow reads it as the record reader would (`arrow_jsonl_chunk`); a chunk it declines (a bad line, a
            blank line, a column of mixed types, one of these columns not text or integers) is read line by line
            as ever, into ``records`` and ``bad_rows``.

    Raises:
        CatalogError: naming the file when it is missing, empty, or has no header.

    Example:
        >>> reader = CatalogReader("catalog.csv")  # doctest: +SKIP
        >>> reader.columns  # doctest: +SKIP
        ['id', 'title', 'category']
        >>> for chunk in reader:  # doctest: +SKIP
        ...     print(len(chunk.records), len(chunk.bad_rows))
    """

    def __init__(self, path: str | os.PathLike, format: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 columns: Sequence[str] | None = None, known_columns: Sequence[str] | None = None,
                 line_range: tuple[int, int | None] | None = None, table_columns: Sequence[str] | None = None):
        self.path = Path(path)
        self.line_range = line_range
        self.table_columns = list(table_columns) if table_columns is not None else None
        self.format = detect_format(self.path, format)
        self.chunk_rows = int(chunk_rows)
        self.selected = list(columns) if columns is not None else None
        if not self.path.is_file():
            raise CatalogError(f"{self.path}: catalog file not found")
        if self.path.stat().st_size == 0:
            raise CatalogError(f"{self.path}: the file is empty")
        self.location_kind = "row" if self.format == "parquet" else "line"
        self.columns = list(known_columns) if known_columns is not None else self._read_columns()

    # ------------------------------------------------------------------ header
    def _read_columns(self) -> list[str]:
        if self.format == "parquet":
            import pyarrow as pa  # lazy: pyarrow is slow to import and only Parquet catalogs need it
            import pyarrow.parquet as pq

            try:
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            except (OSError, ValueError, pa.ArrowException) as error:
                raise CatalogError(f"{self.path}: not a readable Parquet file: {error}") from None
        if self.format == "jsonl":
            try:
                with _open_text(self.path) as handle:
                    start = handle.read(4096).lstrip()
            except _UNREADABLE as error:
                raise CatalogError(f"{self.path}: cannot read the file: {type(error).__name__}: {error}") from None
            if start.startswith("["):
                raise CatalogError(f"{self.path}: a JSON array, not JSON Lines; write one JSON object per line "
                                   "(e.g. pandas.read_json(path).to_json(out, orient='records', lines=True))")
            names = _jsonl_columns_by_arrow(self.path, self.chunk_rows)
            if names is not None:
                return names
            names = []
            for chunk in self._unreadable_as_error(self._jsonl_chunks(peek=True)):
                for record in chunk.records:
                    names.extend(key for key in record if key not in names)
            if not names:
                raise CatalogError(f"{self.path}: no JSON object records in the first {self.chunk_rows} lines")
            return names
        with _open_text(self.path) as handle:
            try:
                header = next(csv.reader(handle, delimiter=self._delimiter()))
            except StopIteration:
                raise CatalogError(f"{self.path}: the file is empty (no header line)") from None
            except csv.Error as error:
                raise CatalogError(f"{self.path}: line 1: cannot read the header: {error}") from None
            except _UNREADABLE as error:
                raise CatalogError(f"{self.path}: cannot read the file: {type(error).__name__}: {error}") from None
        bad = _undecodable_field(header, None)
        if bad is not None:
            raise CatalogError(f"{self.path}: line 1: the header is not valid UTF-8 (column {bad}); "
                               "save the file as UTF-8")
        header = [name.strip() for name in header]
        if not any(header):
            raise CatalogError(f"{self.path}: line 1: the header is empty")
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise CatalogError(f"{self.path}: line 1: column name(s) {repeated} appear more than once")
        return header

    def require(self, names: Sequence[str]) -> None:
        """Raises `CatalogError` naming the file and each column of ``names`` it does not have."""
        missing = [name for name in names if name not in self.columns]
        if missing:
            hints = "".join(suggest_column(name, self.columns) for name in missing[:1])
            raise CatalogError(f"{self.path}: column(s) {missing} not found; the file has {self.columns}{hints}")

    def _delimiter(self) -> str:
        return "\t" if self.format == "tsv" else ","

    # ------------------------------------------------------------------ records
    def __iter__(self) -> Iterator[RecordChunk]:
        if self.format == "parquet":
            return self._unreadable_as_error(self._parquet_chunks())
        if self.format == "jsonl":
            if self.table_columns is not None and _arrow_numbers_lines(self.path):
                return self._unreadable_as_error(self._jsonl_table_chunks())
            return self._unreadable_as_error(self._jsonl_chunks())
        return self._unreadable_as_error(self._csv_chunks())

    def _unreadable_as_error(self, chunks: Iterator[RecordChunk]) -> Iterator[RecordChunk]:
        """A file that cannot be read at all past some point (a ``.gz`` that is not gzip or is cut short, a
        Parquet page that does not decode) is a `CatalogError` naming it, not a traceback."""
        try:
            yield from chunks
        except _UNREADABLE as error:
            raise CatalogError(f"{self.path}: cannot read the file past the records above: "
                               f"{type(error).__name__}: {error}") from None

    def _select(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.selected is None:
            return record
        return {name: record[name] for name in self.selected if name in record}

    def _csv_chunks(self) -> Iterator[RecordChunk]:
        header = self.columns
        width = len(header)
        delimiter = self._delimiter()
        chunk = RecordChunk()
        with _open_text(self.path) as handle:
            numbered = enumerate(handle, start=1)
            pending: deque[tuple[int, str]] = deque()  # lines to parse again after a broken record
            consumed: list[tuple[int, str]] = []  # lines of the record being parsed

            def lines():
                while True:
                    item = pending.popleft() if pending else next(numbered, None)
                    if item is None:
                        return
                    consumed.append(item)
                    yield item[1]

            # strict: a quote must be followed by a delimiter or the line's end. A lenient parser reads a stray
            # quote pair (`1,"Red shirt` ... `4,Pink" shirt`) as one field swallowing the lines between them.
            reader = csv.reader(lines(), delimiter=delimiter, strict=True)
            header_done = False
            while True:
                consumed.clear()
                problem = None
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    row, problem = None, f"unreadable record: {error}"
                    if len(consumed) == 1:  # a quirk within one line (`"abc"def`): read it as the lenient parser does
                        row = _lenient_row(consumed[0][1], delimiter)
                        if row is not None and len(row) == width:
                            problem = None
                if not header_done:
                    header_done = True
                    continue
                if not consumed:
                    continue
                line = consumed[0][0]
                if len(consumed) == 1 and not consumed[0][1].strip():
                    continue  # a blank line (a quoted field of line breaks is a record, not a blank line)
                if row is not None and len(row) == width:
                    record = dict(zip(header, row))
                    bad_column = _undecodable_field(row, header)
                    if bad_column is None:
                        chunk.records.append(self._select(record))
                        chunk.locations.append(line)
                        chunk.last_lines.append(consumed[-1][0])
                    else:
                        chunk.bad_rows.append(BadRow(str(self.path), line, None, bad_column,
                                                     "not valid UTF-8 text (wrong file encoding?)", record,
                                                     last_line=consumed[-1][0]))
                else:
                    if problem is None:
                        problem = f"has {len(row)} fields, the header has {width}"
                    if len(consumed) > 1:
                        # A stray quote swallows the lines after it; keep only its own line as the bad row
                        # and parse the swallowed lines again, so they are not lost.
                        problem += f" (an unbalanced quote swallowed lines {line}-{consumed[-1][0]}; "\
                                   "the following lines were read again)"
                        pending.extendleft(reversed(consumed[1:]))
                        reader = csv.reader(lines(), delimiter=delimiter, strict=True)
                    raw = consumed[0][1].rstrip("\r\n")
                    chunk.bad_rows.append(BadRow(str(self.path), line, None, None, problem, raw))
                if len(chunk.records) >= self.chunk_rows:
                    yield chunk
                    chunk = RecordChunk()
        if chunk.records or chunk.bad_rows:
            yield chunk

    def _jsonl_chunks(self, peek: bool = False) -> Iterator[RecordChunk]:
        first, stop = (None if peek else self.line_range) or (0, None)
        with _open_text(self.path) as handle:
            numbered = ((number, line) for number, line in enumerate(handle, start=1) if number >= first)
            if stop is not None:
                numbered = itertools.takewhile(lambda item: item[0] < stop, numbered)
            yield from self._jsonl_line_chunks(numbered, peek)

    def _jsonl_line_chunks(self, numbered_lines, peek: bool = False) -> Iterator[RecordChunk]:
        """Chunks of the records of ``(line number, line)`` pairs parsed one by one (`json.loads`), bad lines as
        `BadRow`s."""
        chunk = RecordChunk()
        for line_number, line in numbered_lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                chunk.bad_rows.append(BadRow(str(self.path), line_number, None, None,
                                             f"not valid JSON: {error.msg} at column {error.colno}", line.rstrip("\n")))
                continue
            except (ValueError, RecursionError) as error:  # an integer of over 4,300 digits, objects nested too deep
                chunk.bad_rows.append(BadRow(str(self.path), line_number, None, None,
                                             f"not readable JSON: {error}", line.rstrip("\n")[:200]))
                continue
            if not isinstance(record, dict):
                chunk.bad_rows.append(BadRow(str(self.path), line_number, None, None,
                                             f"a record must be a JSON object, got {type(record).__name__}",
                                             line.rstrip("\n")))
                continue
            bad_column = _undecodable_field(list(record.values()), list(record))
            if bad_column is not None:
                chunk.bad_rows.append(BadRow(str(self.path), line_number, None, bad_column,
                                             "not valid UTF-8 text (wrong file encoding?)", record))
                continue
            chunk.records.append(record if peek else self._select(record))
            chunk.locations.append(line_number)
            if len(chunk.records) >= self.chunk_rows:
                yield chunk
                if peek:
                    return
                chunk = RecordChunk()
        if chunk.records or chunk.bad_rows:
            yield chunk

    def _jsonl_table_chunks(self) -> Iterator[RecordChunk]:
        """JSON Lines chunks of ``chunk_rows`` lines, each read by Arrow (`arrow_jsonl_chunk`) into ``table`` or, when
        Arrow declines it, line by line (`_jsonl_line_chunks`). Only for a file whose lines Arrow and the text reader
        number alike (`_arrow_numbers_lines`)."""
        first, stop = self.line_range or (0, None)
        for number, block in _line_blocks(self.path, self.chunk_rows, first, stop):
            table = arrow_jsonl_chunk(block, self.table_columns)
            if table is not None:
                yield RecordChunk(locations=list(range(number, number + table.num_rows)), table=table)
                continue
            lines = block.decode("utf-8", "surrogateescape").split("\n")
            if lines[-1] == "":  # the block ends with its last line's newline
                lines.pop()
            yield from self._jsonl_line_chunks(enumerate((line + "\n" for line in lines), start=number))

    def _parquet_chunks(self) -> Iterator[RecordChunk]:
        import pyarrow.parquet as pq  # lazy: as in _read_columns

        parquet = pq.ParquetFile(self.path)
        columns = [name for name in self.selected if name in self.columns] if self.selected is not None else None
        row = 0
        for batch in parquet.iter_batches(batch_size=self.chunk_rows, columns=columns):
            records = batch.to_pylist()
            yield RecordChunk(records=records, locations=list(range(row + 1, row + 1 + len(records))))
            row += len(records)


#: Bytes a whole-file scan reads at a time (`jsonl_ids`).
_SCAN_BYTES = 1 << 24
#: Bytes `_line_blocks` reads at a time: a chunk Arrow reads is at most this (and ``chunk_rows`` lines). Measured on
#: 1,000,000 rows of 65 bytes: with 16 MiB reads the reader's RSS grew in steps with the rows (136 → 195 MiB, the
#: allocators keeping the large blocks' pages), with 1 MiB it stayed at 107-113 MiB.
_BLOCK_BYTES = 1 << 20
#: A JSON escape of a surrogate (``\ud800``): `CatalogReader` reports its row as undecodable text.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _only_record_reader_reads(data: bytes) -> bool:
    """Bytes of a JSON Lines file that Arrow's JSON reader would read otherwise than `CatalogReader`: a carriage
    return (lines numbered otherwise) or an escaped surrogate (a bad row for the record reader)."""
    return b"\r" in data or _ESCAPED_SURROGATE.search(data) is not None


#: A line that is not one JSON object alone (blank, not starting with ``{`` or not ending with ``}``), or two objects
#: run together (``}{``, ``} {``): Arrow's JSON reader reads ``{..}{..}`` on one line as two rows and an object over
#: two lines as one, so its rows would not be the file's lines (a ``}{`` inside a text value only costs the fast path).
_NOT_ONE_OBJECT_PER_LINE = re.compile(rb"(?m)^[ \t]*$|^[ \t]*[^{ \t\n]|[^} \t\n][ \t]*$|\}[ \t]*\{")


_RUN_TOGETHER = re.compile(rb"\}[ \t]*\{")


#: Opening brackets a line may hold for Arrow's JSON reader to read it: its parser recurses per level of nesting and
#: crashes the process (a segmentation fault, pyarrow 2x) at about 20,000 levels; a line with more ``[``/``{`` than this
#: (an upper bound of its depth) goes to the record reader, whose `json.loads` raises RecursionError, a bad row.
_ARROW_MAX_OPENERS = 1000


def _arrow_unsafe_lines(lines: bytes) -> bool:
    """Whether whole lines of a JSON Lines file (the last one's newline optional) are not safe for Arrow's JSON reader:
    anything but one JSON object per line (`_NOT_ONE_OBJECT_PER_LINE`: Arrow's rows would be numbered otherwise than
    the file's lines), or a line that may nest deeper than its parser survives (`_ARROW_MAX_OPENERS`). NumPy reads
    each line's first and last byte and counts its brackets; the regular expression runs only when a line does not
    start with ``{`` and end with ``}`` (spaces or tabs around a record, or a bad line)."""
    body = lines[:-1] if lines.endswith(b"\n") else lines
    data = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(data == 10)
    starts, stops = np.concatenate([[0], ends + 1]), np.append(ends, len(data))
    if np.any(stops <= starts):  # an empty line
        return True
    openers = np.add.reduceat(((data == ord("[")) | (data == ord("{"))).astype(np.int64), starts)
    if openers.max() > _ARROW_MAX_OPENERS:
        return True
    if np.any(data[starts] != ord("{")) or np.any(data[stops - 1] != ord("}")):
        return _NOT_ONE_OBJECT_PER_LINE.search(body) is not None
    return _RUN_TOGETHER.search(body) is not None


def _same_as_json(kind) -> bool:
    """Whether Arrow's JSON reader gives a column of this type the values `json.loads` gives (text, integers, all
    nulls); a double column may hold a ``1`` that Python reads as an int, a struct fills the keys a record lacks."""
    import pyarrow as pa  # lazy: as in _jsonl_columns_by_arrow

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_int64(kind) or pa.types.is_null(kind)


def _arrow_numbers_lines(path: Path) -> bool:
    """Whether Arrow's JSON reader and `CatalogReader`'s text reader number a JSON Lines file's lines alike: not
    gzip, no byte-order mark, no carriage return (a line break for the text reader, not for Arrow). One scan of the
    bytes."""
    if path.suffix.lower() == ".gz":
        return False
    with open(path, "rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":
            return False
        handle.seek(0)
        while block := handle.read(_SCAN_BYTES):
            if b"\r" in block:
                return False
    return True


def _line_blocks(path: Path, lines_per_block: int, first: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(number of its first line, bytes)`` of blocks of up to ``lines_per_block`` whole lines of a file whose lines
    end with a newline (``\\n``), from line ``first`` (1-based) up to but not including line ``stop``; NumPy finds
    the newlines, not a Python loop per line."""
    number, carry = 1, b""  # the number of the first line in ``carry``
    with open(path, "rb") as handle:
        while True:
            data = handle.read(_BLOCK_BYTES)
            buffer = carry + data
            if not buffer:
                return
            ends = np.flatnonzero(np.frombuffer(buffer, np.uint8) == 10) + 1  # one past each newline
            if not data and (not len(ends) or ends[-1] != len(buffer)):
                ends = np.append(ends, len(buffer))  # the last line, without a newline
            if not len(ends):  # a line longer than the read: read on
                carry = buffer
                continue
            starts = np.concatenate([[0], ends[:-1]])
            numbers = number + np.arange(len(ends))
            kept = np.flatnonzero((numbers >= first) & ((numbers < stop) if stop is not None else True))
            for cut in range(0, len(kept), lines_per_block):
                part = kept[cut:cut + lines_per_block]
                yield int(numbers[part[0]]), buffer[int(starts[part[0]]):int(ends[part[-1]])]
            number += len(ends)
            carry = buffer[int(ends[-1]):] if len(ends) else buffer
            if not data or (stop is not None and number >= stop):
                return


def arrow_jsonl_chunk(block: bytes, columns: Sequence[str]):
    """The records of a block of JSON Lines (whole lines) as an Arrow table of ``columns`` (those any record has),
    read by Arrow's JSON reader when it reads them as `CatalogReader`'s record reader does: every line one JSON object
    (none blank, none repeating a key), the bytes UTF-8 with no escaped surrogate, and each of ``columns`` text,
    integers or nulls (`_same_as_json`); None when it does not (the caller reads the block line by line)."""
    import pyarrow as pa  # lazy: as in _jsonl_columns_by_arrow
    import pyarrow.json as pajson

    if not block or _only_record_reader_reads(block) or _arrow_unsafe_lines(block):
        return None
    try:
        block.decode("utf-8")
        table = pajson.read_json(pa.BufferReader(block), read_options=pajson.ReadOptions(
            use_threads=False, block_size=max(1 << 20, len(block) + 1)))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if table.num_rows != lines:  # Arrow skips a blank line, which the record reader numbers
        return None
    present = [name for name in columns if name in table.schema.names]
    if not all(_same_as_json(table.schema.field(name).type) for name in present):
        return None
    return table.select(present)


def _jsonl_columns_by_arrow(path: Path, records: int) -> list[str] | None:
    """The keys of the first ``records`` lines of a JSON Lines file in order of first appearance, read by Arrow's JSON
    reader (C++) when every one of those lines is a record it reads as `CatalogReader` does (see `jsonl_ids`); None
    otherwise (then the reader parses them one by one, leaving bad lines out)."""
    import pyarrow as pa  # lazy: pyarrow is slow to import and only these readers need it here
    import pyarrow.json as pajson

    if path.suffix.lower() == ".gz":
        return None
    with open(path, "rb") as handle:
        head = b"".join(handle.readline() for _ in range(records))
    if not head or _only_record_reader_reads(head) or _arrow_unsafe_lines(head):
        return None
    try:
        head.decode("utf-8")
        table = pajson.read_json(pa.BufferReader(head))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    lines = head.count(b"\n") + (0 if head.endswith(b"\n") else 1)
    return list(table.schema.names) if table.num_rows == lines and table.num_columns else None


def jsonl_ids(path: str | os.PathLike, id_column: str):
    """The lines and ids of a JSON Lines file's records, read by Arrow's JSON reader keeping the id column only (C++,
    no Python per row): ``(lines, ids)``, ``lines`` int64 (1-based) and ``ids`` an Arrow array of text or integers
    with nulls where a record has none; apply `linnet.data.rows.row_ids_of_array` to it.

    ``None`` when only `CatalogReader`, record by record, reads the file the same way: gzip; a carriage return
    or an empty line (lines numbered otherwise); bytes that are not UTF-8 or an escaped surrogate (its bad rows);
    a line Arrow cannot read (a record that is not an object, a repeated key); or ids that are neither all text nor
    all integers (Arrow reads a large integer or ``1.0`` otherwise than Python).
    """
    import codecs

    import pyarrow as pa  # lazy: only the engines' id pass reads this way
    import pyarrow.json as pajson

    path = Path(path)
    if path.suffix.lower() == ".gz":
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, carry, last, partial = 0, b"", b"", b""  # partial: the bytes after the last newline read so far
    with open(path, "rb") as handle:
        while block := handle.read(_SCAN_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return None
            if _only_record_reader_reads(block) or _only_record_reader_reads(carry + block[:5]):  # no block copy
                return None
            first_end, last_end = block.find(b"\n") + 1, block.rfind(b"\n") + 1
            if not first_end:  # a line longer than the read
                partial += block
            elif (_arrow_unsafe_lines(partial + block[:first_end])
                  or (last_end > first_end and _arrow_unsafe_lines(block[first_end:last_end]))):
                return None
            else:
                partial = block[last_end:]
            newlines += block.count(b"\n")
            carry, last = block[-5:], block[-1:]
    if partial and _arrow_unsafe_lines(partial):
        return None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    lines = newlines + (1 if last not in (b"", b"\n") else 0)
    for kind in (pa.string(), pa.int64()):
        options = pajson.ParseOptions(explicit_schema=pa.schema([(id_column, kind)]), unexpected_field_behavior="ignore")
        try:
            table = pajson.read_json(path, parse_options=options)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            continue
        if table.num_rows != lines:  # Arrow skips empty lines that the reader numbers
            return None
        return np.arange(1, lines + 1, dtype=np.int64), table.column(id_column).combine_chunks()
    return None


def read_records(path: str | os.PathLike, format: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[tuple[int, dict]]:
    """Every readable record of a catalog as ``(location, record)``; bad rows raise `CatalogError`.

    Example:
        >>> for line, record in read_records("catalog.jsonl"):  # doctest: +SKIP
        ...     print(line, record["title"])
    """
    for chunk in CatalogReader(path, format=format, chunk_rows=chunk_rows):
        if chunk.bad_rows:
            raise CatalogError(chunk.bad_rows[0].message())
        yield from zip(chunk.locations, chunk.records)
