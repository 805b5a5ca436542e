"""Event logs (purchases, clicks) from CSV/TSV/JSONL/Parquet: explicit columns, explicit cleaning, bad rows
named by file and line.

`EventSchema` names every column (none is assumed); `CleaningRules` says which rows to drop and why;
`read_events` reads a file with pandas (vectorised, no Python per row) and returns an `EventLog`: a tidy
frame with one row per kept event (``user``, ``item``, ``time`` as int64 seconds, ``basket``, ``title``,
``line``), the cleaning counts per reason and the bad rows (`linnet.data.BadRow`: file, line, field,
problem). A bad row (unparseable time, empty item, a malformed line) never stops the read.

Example:
    >>> schema = EventSchema(user_column="customer_id", item_column="stock_code", time_column="invoice_date",
    ...                      basket_column="invoice")
    >>> log = read_events("events.csv", schema)  # doctest: +SKIP
    >>> log.report.dropped  # doctest: +SKIP
    {'no user': 100207, 'return or cancellation': 9877, ...}
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from linnet.data.readers import BadRow, detect_format, suggest_column
from linnet.errors import CatalogError, ConfigError

#: Columns of `EventLog.frame`.
FRAME_COLUMNS = ("user", "item", "time", "basket", "title", "line")
_PANDAS_BAD_LINE = re.compile(r"Skipping line (\d+): (.*)")


@dataclasses.dataclass(frozen=True)
class EventSchema:
    """Which column holds what. ``user_column`` or ``session_column`` (anonymous click sessions: the session
    is the sequence) is required, with ``item_column`` and ``time_column``.

    Attributes:
        basket_column: an order/invoice id grouping items bought together (optional).
        event_column, event_values: keep only rows whose event type is one of ``event_values``.
        quantity_column: read by the returns rule (`CleaningRules.drop_negative_quantity`).
        title_column: an item title (for neighbours, maps and cold start).
        time_format: a ``strftime`` format, ``"unix"`` (seconds), or None (pandas infers ISO dates).
    """

    item_column: str
    time_column: str
    user_column: str | None = None
    session_column: str | None = None
    basket_column: str | None = None
    event_column: str | None = None
    event_values: tuple[str, ...] = ()
    quantity_column: str | None = None
    title_column: str | None = None
    time_format: str | None = None

    def __post_init__(self):
        if not (self.user_column or self.session_column):
            raise ConfigError("event schema: give --user-column or --session-column (the sequence's owner)")
        if self.event_column and not self.event_values:
            raise ConfigError("event schema: --event-column needs --event-values (the event types to keep)")
        object.__setattr__(self, "event_values", tuple(str(value) for value in self.event_values))

    @property
    def owner_column(self) -> str:
        """The column whose value owns a sequence: the user, else the session."""
        return self.user_column or self.session_column

    def columns(self) -> list[str]:
        names = [self.owner_column, self.item_column, self.time_column, self.basket_column, self.event_column,
                 self.quantity_column, self.title_column]
        if self.user_column and self.session_column:
            names.append(self.session_column)
        return list(dict.fromkeys(name for name in names if name))

    def to_dict(self) -> dict:
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict) -> EventSchema:
        payload = dict(payload)
        payload["event_values"] = tuple(payload.get("event_values") or ())
        return cls(**payload)


@dataclasses.dataclass(frozen=True)
class CleaningRules:
    """Rows dropped before sequences are built, each counted under its reason.

    Attributes:
        drop_negative_quantity: a row whose ``quantity_column`` is 0 or negative is a return/cancellation.
        cancel_basket_prefixes: a basket id starting with one of these is a cancellation (e.g. ``("C", "A")``).
        exclude_items: a regular expression; items fully matching it are dropped (e.g. ``"[^0-9].*"`` keeps
            only codes starting with a digit, dropping postage and fees).
    """

    drop_negative_quantity: bool = True
    cancel_basket_prefixes: tuple[str, ...] = ()
    exclude_items: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "cancel_basket_prefixes", tuple(self.cancel_basket_prefixes))
        if self.exclude_items:
            try:
                re.compile(self.exclude_items)
            except re.error as error:
                raise ConfigError(f"--exclude-items {self.exclude_items!r} is not a regular expression: {error}") \
                    from None

    def to_dict(self) -> dict:
        return {"drop_negative_quantity": self.drop_negative_quantity,
                "cancel_basket_prefixes": list(self.cancel_basket_prefixes), "exclude_items": self.exclude_items}

    @classmethod
    def from_dict(cls, payload: dict) -> CleaningRules:
        return cls(**payload)


@dataclasses.dataclass
class CleaningReport:
    """How many rows were read, kept, dropped per reason, and the bad rows (each named by file and line)."""

    file: str
    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    bad_rows: list[BadRow] = dataclasses.field(default_factory=list)
    #: Owners (users or sessions) seen in the file none of whose rows was kept, with the reason of the first.
    dropped_owners: dict[str, str] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.dropped.items() if count)
        bad = f"; {len(self.bad_rows)} bad row(s), first: {self.bad_rows[0].message()}" if self.bad_rows else ""
        return f"{self.file}: {self.rows} rows, {self.kept} kept" + (f", dropped: {reasons}" if reasons else "") + bad

    def to_dict(self) -> dict:
        return {"file": self.file, "rows": self.rows, "kept": self.kept, "dropped": dict(self.dropped),
                "bad_rows": len(self.bad_rows)}


@dataclasses.dataclass
class EventLog:
    """Kept events (`FRAME_COLUMNS`, in file order) and the cleaning report."""

    frame: pd.DataFrame
    report: CleaningReport

    def titles(self) -> dict[str, str]:
        """Each item's most frequent non-empty title (stripped)."""
        titled = self.frame[self.frame["title"] != ""]
        if titled.empty:
            return {}
        counts = titled.groupby(["item", "title"], sort=False).size().reset_index(name="n")
        best = counts.sort_values(["item", "n", "title"], ascending=[True, False, True]).drop_duplicates("item")
        return dict(zip(best["item"], best["title"]))


def _read_frame(path: Path, schema: EventSchema, format: str | None) -> tuple[pd.DataFrame, np.ndarray, list[BadRow], str]:
    """All needed columns as strings, each row's location (line, or row for Parquet), malformed lines."""
    kind = detect_format(path, format)
    columns = schema.columns()
    bad: list[BadRow] = []
    if kind == "parquet":
        frame = pd.read_parquet(path)
        _require(path, columns, list(frame.columns))
        frame = frame[columns].astype(str).replace({"None": "", "nan": "", "<NA>": ""})
        return frame.reset_index(drop=True), np.arange(1, len(frame) + 1), bad, "row"
    if kind == "jsonl":
        try:
            frame = pd.read_json(path, lines=True, dtype=False)
        except ValueError as error:
            raise CatalogError(f"{path}: not JSON Lines: {error}") from None
        _require(path, columns, list(frame.columns))
        frame = frame[columns].astype(object).where(frame[columns].notna(), "").astype(str)
        return frame.reset_index(drop=True), np.arange(1, len(frame) + 1), bad, "line"
    separator = "\t" if kind == "tsv" else ","
    try:
        header = pd.read_csv(path, sep=separator, nrows=0, dtype=str).columns.tolist()
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CatalogError(f"{path}: line 1: cannot read the header: {error}") from None
    _require(path, columns, header)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Every column is read: with ``usecols`` pandas no longer notices a line with too many fields.
        full = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, on_bad_lines="warn",
                           skip_blank_lines=False, encoding_errors="replace").fillna("")
    # pandas numbers a skipped line by its record (the header is 1); a file line counts the newlines inside
    # quoted fields too. Each row's file line: the header, the rows before it, their quoted newlines, and
    # the skipped records before it.
    newlines = sum(full[column].str.count("\n").to_numpy() for column in full.columns)
    frame = full[columns]
    newlines_before = np.concatenate([[0], np.cumsum(newlines)]).astype(np.int64)
    records = sorted(int(line) for warning in caught for line, _ in _PANDAS_BAD_LINE.findall(str(warning.message)))
    problems = {int(line): problem for warning in caught
                for line, problem in _PANDAS_BAD_LINE.findall(str(warning.message))}
    skipped_before = np.zeros(len(frame), dtype=np.int64)
    for count, record in enumerate(records):  # loops over malformed lines only
        good_before = record - 2 - count
        skipped_before[good_before:] += 1
        line = 2 + good_before + int(newlines_before[min(good_before, len(frame))]) + count
        bad.append(BadRow(str(path), line, None, None, f"malformed line: {problems[record].strip()}"))
    lines = 2 + np.arange(len(frame)) + newlines_before[:-1] + skipped_before
    blank = (frame[columns] == "").all(axis=1).to_numpy()
    return frame[~blank].reset_index(drop=True), lines[~blank], bad, "line"


def _require(path: Path, needed: list[str], present: list[str]) -> None:
    missing = [name for name in needed if name not in present]
    if missing:
        hints = "".join(suggest_column(name, present) for name in missing[:1])
        raise CatalogError(f"{path}: column(s) {missing} not found (columns: {present}){hints}")


def parse_times(values: pd.Series, time_format: str | None) -> np.ndarray:
    """int64 seconds since the epoch; ``INT64_MIN`` where a value cannot be parsed."""
    missing = np.iinfo(np.int64).min
    if time_format == "unix":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        return np.where(np.isfinite(numbers), np.nan_to_num(numbers).astype(np.int64), missing)
    parsed = pd.to_datetime(values, format=time_format or "ISO8601", errors="coerce", utc=False)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    seconds = parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)
    return np.where(parsed.isna().to_numpy(), missing, seconds)


def read_events(path: str | os.PathLike, schema: EventSchema, rules: CleaningRules | None = None,
                format: str | None = None) -> EventLog:
    """Reads and cleans one event file.

    Rows are dropped, each under one reason (the first that applies, in this order): ``bad row`` (time
    unparseable or item empty; also listed in ``report.bad_rows`` with file, line, owner id and field),
    ``no user`` (owner column empty), ``other event`` (event type not kept), ``return or cancellation``,
    ``excluded item``.

    Raises:
        CatalogError: the file cannot be read, a named column is missing, or no row is left.
    """
    path = Path(path)
    rules = rules or CleaningRules()
    if not path.is_file():
        raise CatalogError(f"{path}: event file not found")
    frame, locations, bad, location_kind = _read_frame(path, schema, format)
    report = CleaningReport(file=str(path), rows=len(frame) + len(bad))
    for row in bad:
        row.location_kind = location_kind
    owner = frame[schema.owner_column].str.strip()
    item = frame[schema.item_column].str.strip()
    times = parse_times(frame[schema.time_column].str.strip(), schema.time_format)
    no_time = times == np.iinfo(np.int64).min
    no_item = (item == "").to_numpy()
    bad_mask = no_time | no_item
    for position in np.flatnonzero(bad_mask):  # loops over bad rows only
        field, problem = ((schema.item_column, "empty item") if no_item[position] else
                          (schema.time_column, f"cannot parse time {frame[schema.time_column].iat[position]!r}"))
        bad.append(BadRow(str(path), int(locations[position]), owner.iat[position] or None, field, problem,
                          location_kind=location_kind))
    reasons = {"bad row": bad_mask}
    reasons["no user"] = (owner == "").to_numpy()
    if schema.event_column:
        reasons["other event"] = ~frame[schema.event_column].str.strip().isin(schema.event_values).to_numpy()
    returns = np.zeros(len(frame), dtype=bool)
    if rules.drop_negative_quantity and schema.quantity_column:
        quantity = pd.to_numeric(frame[schema.quantity_column], errors="coerce").to_numpy()
        returns |= ~(quantity > 0)
    if rules.cancel_basket_prefixes and schema.basket_column:
        returns |= frame[schema.basket_column].str.strip().str.startswith(rules.cancel_basket_prefixes).to_numpy()
    reasons["return or cancellation"] = returns
    if rules.exclude_items:
        reasons["excluded item"] = item.str.fullmatch(rules.exclude_items).to_numpy(dtype=bool)
    keep = np.ones(len(frame), dtype=bool)
    why = np.full(len(frame), "", dtype=object)
    for reason, mask in reasons.items():
        report.dropped[reason] = int((mask & keep).sum())
        why[mask & keep] = reason
        keep &= ~mask
    lost = (~keep) & (owner != "").to_numpy() & ~owner.isin(set(owner[keep])).to_numpy()
    lost_owners = pd.DataFrame({"owner": owner[lost].to_numpy(), "why": why[lost]}).drop_duplicates("owner")
    report.dropped_owners = dict(zip(lost_owners["owner"], lost_owners["why"]))
    report.dropped["bad row"] += len(bad) - int(bad_mask.sum())  # malformed lines pandas skipped
    kept = pd.DataFrame({
        "user": owner[keep].to_numpy(),
        "item": item[keep].to_numpy(),
        "time": times[keep],
        "basket": (frame[schema.basket_column].str.strip()[keep].to_numpy() if schema.basket_column
                   else np.full(int(keep.sum()), "", dtype=object)),
        "title": (frame[schema.title_column].str.strip()[keep].to_numpy() if schema.title_column
                  else np.full(int(keep.sum()), "", dtype=object)),
        "line": locations[keep],
    })
    report.kept = len(kept)
    report.bad_rows = sorted(bad, key=lambda row: row.location)
    if kept.empty:
        raise CatalogError(f"{report.summary()}: no event is left to build sequences from")
    return EventLog(kept, report)
