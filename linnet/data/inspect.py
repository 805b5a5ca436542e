"""`inspect_catalog`: what a catalog holds before any training: rows, label coverage, imbalance, images, text."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from linnet.data.prepare import prepare_catalog
from linnet.data.schema import CatalogSchema

PERCENTILES = (50, 90, 99)
RARE = 5  # classes with fewer labelled rows are hard to learn and to evaluate


@dataclass
class CatalogInspection:
    """Numbers about one catalog; `to_markdown` renders them."""

    path: str
    rows_read: int
    rows_usable: int
    bad_rows: int
    levels: list[dict[str, Any]] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0
    images: dict[str, int] = field(default_factory=dict)
    undecodable_images: int | None = None
    text_lengths: dict[str, dict[str, float]] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    bad_row_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def to_markdown(self) -> str:
        lines = [f"# {self.path}", "",
                 (f"{self.rows_read} rows read, {self.rows_usable} usable, {self.bad_rows} bad, "
                 f"{self.unlabelled} without a category"), ""]
        if self.levels:
            lines += [("| level | classes in tree | classes used | labelled rows | coverage | largest class | "
                      f"smallest class | imbalance (largest/smallest) | classes under {RARE} rows |"),
                      "|---|---|---|---|---|---|---|---|---|"]
            for level in self.levels:
                lines.append(f"| {level['level']} | {level['classes']} | {level['classes_used']} | {level['labelled']} "
                             f"| {level['coverage']:.1%} | {level['largest']} | {level['smallest']} "
                             f"| {level['imbalance']:.1f} | {level['rare']} |")
            lines.append("")
        if self.unknown_labels:
            lines += ["| unknown label | rows |", "|---|---|"]
            lines += [f"| {label} | {count} |" for label, count in
                      sorted(self.unknown_labels.items(), key=lambda item: -item[1])[:20]]
            lines.append("")
        if self.images:
            lines += ["| image | rows |", "|---|---|"] + [f"| {kind} | {count} |" for kind, count in self.images.items()]
            if self.undecodable_images is not None:
                lines.append(f"| undecodable (of those checked) | {self.undecodable_images} |")
            lines.append("")
        if self.text_lengths:
            header = " | ".join(f"p{p}" for p in PERCENTILES)
            lines += [f"| text field | empty | {header} | max |", "|---|---|" + "---|" * len(PERCENTILES) + "---|"]
            for name, stats in self.text_lengths.items():
                values = " | ".join(f"{stats[f'p{p}']:.0f}" for p in PERCENTILES)
                lines.append(f"| {name} | {stats['empty']:.1%} | {values} | {stats['max']:.0f} |")
            lines.append("")
        if self.splits:
            lines.append("split: " + ", ".join(f"{name} {count}" for name, count in self.splits.items()))
        if self.bad_row_examples:
            lines += ["", "bad rows (first few):"] + [f"- {message}" for message in self.bad_row_examples]
        return "\n".join(lines)


def _undecodable(sources, limit: int) -> int:
    bad = 0
    for source in [source for source in sources if isinstance(source, str) and source][:limit]:
        try:
            with Image.open(source) as image:
                image.verify()
        except Exception:  # noqa: BLE001  any Pillow failure means "cannot decode"
            bad += 1
    return bad


def inspect_catalog(path: str | os.PathLike, schema: CatalogSchema, taxonomy=None, *, max_rows: int | None = None,
                    check_images: int = 0, progress: bool = False) -> CatalogInspection:
    """Reads a catalog leniently (bad rows and unknown labels are counted, not fatal) and describes it.

    Args:
        path: The catalog file.
        schema: Its column roles.
        taxonomy: Tree to check labels against; inferred from the catalog when None.
        max_rows: Look at the first rows only.
        check_images: Open and verify up to this many image files with Pillow (0: only check they exist).
        progress: Show a progress bar while reading.

    Example:
        >>> schema = CatalogSchema(text_columns=["productDisplayName"], category_column="category_path")
        >>> print(inspect_catalog("styles.csv", schema).to_markdown())  # doctest: +SKIP
    """
    catalog = prepare_catalog(path, schema, taxonomy, unknown_labels="skip", bad_rows="skip", max_rows=max_rows,
                              progress=progress)
    report = catalog.report
    inspection = CatalogInspection(path=str(path), rows_read=report.rows_read, rows_usable=len(catalog),
                                   bad_rows=len(report.bad_rows) - report.dropped_unknown,
                                   unknown_labels=dict(report.unknown_labels), unlabelled=report.unlabelled,
                                   images=dict(report.images), splits=dict(report.splits),
                                   bad_row_examples=[row.message() for row in report.bad_rows[:5]])
    if catalog.taxonomy is not None:
        for level in range(1, catalog.num_levels + 1):
            column = catalog.labels[:, level - 1]
            labelled = column[column >= 0]
            counts = np.bincount(labelled, minlength=len(catalog.taxonomy.classes(level)))
            used = counts[counts > 0]
            inspection.levels.append({
                "level": level, "classes": int(counts.size), "classes_used": int(used.size),
                "labelled": int(labelled.size), "coverage": float(labelled.size / max(len(catalog), 1)),
                "largest": int(used.max()) if used.size else 0, "smallest": int(used.min()) if used.size else 0,
                "imbalance": float(used.max() / used.min()) if used.size else 0.0,
                "rare": int((used < RARE).sum()),
            })
    for name, texts in catalog.texts.items():
        lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
        stats = {f"p{p}": float(np.percentile(lengths, p)) if lengths.size else 0.0 for p in PERCENTILES}
        stats["max"] = float(lengths.max()) if lengths.size else 0.0
        stats["empty"] = float((lengths == 0).mean()) if lengths.size else 0.0
        inspection.text_lengths[name] = stats
    if check_images and catalog.image_sources is not None:
        inspection.undecodable_images = _undecodable(catalog.image_sources, check_images)
    return inspection
