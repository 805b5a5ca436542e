"""Markdown evaluation reports and PNG plots (matplotlib, Agg backend: no display needed).

Every number in a report comes from the metrics dict that is written next to it as ``metrics.json``;
:func:`format_number` is the one place numbers are rounded, so a reader (or a test) can match them.

Example:
    >>> from linnet.evaluation.reports import markdown_report
    >>> text = markdown_report("demo", {"n_products": 2, "hierarchical_f1": 0.5, "hierarchical_precision": 0.5,
    ...     "hierarchical_recall": 0.5, "level_accuracy": [1.0, 0.5], "leaf_accuracy": 0.5, "coverage": 1.0})
    >>> "| hierarchical F1 | 0.5000 |" in text
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_path
from linnet.evaluation.metrics import ConfusionMatrix

HEADLINE_KEYS = (
    ("hierarchical precision", "hierarchical_precision"),
    ("hierarchical recall", "hierarchical_recall"),
    ("hierarchical F1", "hierarchical_f1"),
    ("leaf accuracy", "leaf_accuracy"),
    ("coverage", "coverage"),
)


def format_number(value) -> str:
    """How every score is printed in reports: 4 decimals, ``n/a`` for an undefined (NaN/None) score."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.4f}"


def _pyplot():
    import matplotlib  # lazy: matplotlib is slow to import and only the plots need it

    matplotlib.use("Agg", force=True)  # files only; never needs a display
    import matplotlib.pyplot as plt  # lazy: after the backend is chosen

    return plt


def _save_figure(figure, path) -> Path:
    """Save as PNG atomically (`linnet.atomic_files.atomic_path`) and close the figure."""
    try:
        with atomic_path(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    finally:
        _pyplot().close(figure)
    return Path(path)


def short_label(node: str, width: int = 28, separator: str = " > ") -> str:
    """A readable axis label: the last two names of a path, shortened in the middle to ``width`` characters."""
    parts = str(node).split(separator)
    text = separator.join(parts[-2:]) if len(parts) > 1 else parts[0]
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width - width // 2):]


# ------------------------------------------------------------------------------------------------ plots
def plot_level_accuracy(results: Mapping[str, Mapping], path) -> Path:
    """Grouped bars of per-level accuracy (and leaf accuracy), one colour per model or baseline."""
    plt = _pyplot()
    names = list(results)
    num_levels = max(len(result.get("level_accuracy", [])) for result in results.values())
    groups = [f"level {level}" for level in range(1, num_levels + 1)] + ["leaf"]
    figure, axis = plt.subplots(figsize=(1.6 + 1.3 * len(groups) * max(1, len(names)) ** 0.5, 3.6))
    width = 0.8 / max(len(names), 1)
    for offset, name in enumerate(names):
        values = list(results[name].get("level_accuracy", [])) + [np.nan] * num_levels
        values = values[:num_levels] + [results[name].get("leaf_accuracy", np.nan)]
        positions = np.arange(len(groups)) + (offset - (len(names) - 1) / 2) * width
        bars = axis.bar(positions, np.nan_to_num(np.asarray(values, dtype=float)), width, label=name)
        for bar, value in zip(bars, values):
            axis.annotate(format_number(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=7, rotation=90 if len(names) > 2 else 0)
    axis.set_xticks(np.arange(len(groups)), groups)
    axis.set_ylim(0, 1.12)
    axis.set_ylabel("accuracy")
    axis.set_title("Accuracy per level")
    axis.legend(loc="lower left", fontsize=8)
    return _save_figure(figure, path)


def plot_precision_coverage(curves: Sequence[Mapping], path, target_precision: float | None = None) -> Path:
    """Precision against coverage as the threshold moves, one line per level (curves from
    :func:`linnet.evaluation.calibration.precision_coverage_curve`)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.2, 3.8))
    for level, curve in enumerate(curves, start=1):
        if len(curve["coverage"]):
            axis.plot(curve["coverage"], curve["precision"], label=f"level {level}", linewidth=1.5)
    if target_precision is not None:
        axis.axhline(target_precision, color="grey", linestyle="--", linewidth=1, label=f"target {target_precision:g}")
    axis.set_xlabel("coverage (share of products exposed at the level)")
    axis.set_ylabel("precision on covered products")
    axis.set_xlim(0, 1.01)
    axis.set_title("Precision-coverage trade-off")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return _save_figure(figure, path)


def plot_confusion_matrix(matrix: ConfusionMatrix, path, normalize: bool = True) -> Path:
    """Heatmap of a top-N confusion matrix, rows normalised to shares, with shortened readable labels."""
    plt = _pyplot()
    values = matrix.matrix.astype(float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    size = 2.5 + 0.32 * len(matrix.column_labels)
    figure, axis = plt.subplots(figsize=(size + 1.5, 1.5 + 0.32 * len(matrix.row_labels) + 1.5))
    image = axis.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None, aspect="auto")
    axis.set_xticks(range(len(matrix.column_labels)), [short_label(label) for label in matrix.column_labels],
                    rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(len(matrix.row_labels)), [short_label(label) for label in matrix.row_labels], fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"Level {matrix.level}: top {len(matrix.row_labels)} categories" + (" (row shares)" if normalize else ""))
    figure.colorbar(image, ax=axis, fraction=0.04)
    return _save_figure(figure, path)


def plot_reliability(curves: Sequence[Mapping], path) -> Path:
    """Calibration curve: accuracy against mean confidence per bin, one line per level, and the diagonal."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for level, curve in enumerate(curves, start=1):
        if len(curve["confidence"]):
            axis.plot(curve["confidence"], curve["accuracy"], marker="o", markersize=3,
                      label=f"level {level} (ECE {curve['ece']:.3f})")
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_title("Calibration curve")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return _save_figure(figure, path)


# --------------------------------------------------------------------------------------------- Markdown
def headline_table(results: Mapping[str, Mapping]) -> str:
    """One row per score, one column per model: the side-by-side comparison table."""
    names = list(results)
    num_levels = max((len(result.get("level_accuracy", [])) for result in results.values()), default=0)
    lines = ["| score | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, key in HEADLINE_KEYS:
        lines.append(f"| {label} | " + " | ".join(format_number(results[name].get(key)) for name in names) + " |")
    for level in range(num_levels):
        cells = [format_number(result["level_accuracy"][level]) if level < len(result.get("level_accuracy", []))
                 else "n/a" for result in results.values()]
        lines.append(f"| level {level + 1} accuracy | " + " | ".join(cells) + " |")
    lines.append("| products | " + " | ".join(format_number(results[name].get("n_products")) for name in names) + " |")
    return "\n".join(lines)


def _level_value(metrics: Mapping, level: int, key: str, *path):
    """``metrics[key][level][path...]``, or None where any step is missing."""
    value = metrics.get(key)
    if value is None or level >= len(value):
        return None
    value = value[level]
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def _level_table(metrics: Mapping) -> str:
    lines = ["| level | accuracy | coverage | precision on covered | micro F1 | macro F1 | weighted F1 | top-5 accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for level, accuracy in enumerate(metrics.get("level_accuracy", [])):
        lines.append("| " + " | ".join([str(level + 1), format_number(accuracy),
                                          format_number(_level_value(metrics, level, "level_coverage")),
                                          format_number(_level_value(metrics, level, "level_precision_on_covered")),
                                          format_number(_level_value(metrics, level, "level_prf", "micro", "f1")),
                                          format_number(_level_value(metrics, level, "level_prf", "macro", "f1")),
                                          format_number(_level_value(metrics, level, "level_prf", "weighted", "f1")),
                                          format_number(_level_value(metrics, level, "level_top5_accuracy"))]) + " |")
    return "\n".join(lines)


def _subtree_table(breakdown: Mapping[str, Mapping]) -> str:
    lines = ["| subtree | products | hierarchical F1 | leaf accuracy | coverage |", "|---|---|---|---|---|"]
    for node, scores in breakdown.items():
        lines.append(f"| {node} | {format_number(scores.get('n_products'))} | {format_number(scores.get('hierarchical_f1'))} "
                     f"| {format_number(scores.get('leaf_accuracy'))} | {format_number(scores.get('coverage'))} |")
    return "\n".join(lines)


def markdown_report(name: str, metrics: Mapping, compare: Mapping[str, Mapping] | None = None,
                    tradeoff: str | None = None, plots: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """The evaluation report: headline scores (side by side with ``compare``), per level, per subtree, plots."""
    results = {name: metrics, **dict(compare or {})}
    sections = [f"# Evaluation: {name}", "", headline_table(results), ""]
    if notes:
        sections += [f"- {note}" for note in notes] + [""]
    sections += ["## Per level", "", _level_table(metrics), ""]
    hierarchical_macro = metrics.get("hierarchical_macro")
    if hierarchical_macro:
        sections += [("Hierarchical macro (per-product average): precision "
                      f"{format_number(hierarchical_macro.get('precision'))}, recall "
                      f"{format_number(hierarchical_macro.get('recall'))}, F1 {format_number(hierarchical_macro.get('f1'))}."),
                     ""]
    value_weighted = metrics.get("value_weighted")
    if value_weighted:
        sections += ["## Value-weighted", "",
                     f"Value-weighted hierarchical F1 {format_number(value_weighted.get('hierarchical_f1'))}, "
                     f"leaf accuracy {format_number(value_weighted.get('leaf_accuracy'))}; per level: "
                     + ", ".join(format_number(value) for value in value_weighted.get("level_accuracy", [])) + ".", ""]
    if metrics.get("subtrees"):
        sections += ["## Per subtree", "", _subtree_table(metrics["subtrees"]), ""]
    if tradeoff:
        sections += ["## Precision-coverage trade-off (thresholds fitted on this split)", "", tradeoff, ""]
    if plots:
        sections += ["## Plots", ""] + [f"![{Path(plot).stem}]({Path(plot).name})" for plot in plots] + [""]
    return "\n".join(sections)
