"""TensorBoard projector files and a static 2-D scatter of product embeddings.

``write_projector`` writes, into one directory:

- ``vectors.tsv``: one tab-separated vector per line;
- ``metadata.tsv``: a header, then id, title and the category name per level for each vector;
- ``projector_config.pbtxt``: points TensorBoard's projector (t-SNE / UMAP / PCA views) at both files;
  open it with ``tensorboard --logdir DIR``;
- ``scatter.png``: a 2-D PCA (or t-SNE) map coloured by level-1 category, for reports.

Example:
    >>> import numpy as np
    >>> write_projector("projector", np.random.rand(100, 8), [str(i) for i in range(100)])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_path, write_text_atomically
from linnet.embeddings.vectors import check_vectors
from linnet.errors import ConfigError, EmbeddingError

PROJECTIONS = ("pca", "tsne")
_MAX_LEGEND = 12


def _cell(value) -> str:
    # TSV has no quoting in the projector's reader: tabs and newlines inside a title would shift columns.
    return " ".join(str(value if value is not None else "").split())


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0, tsne_iterations: int = 1000) -> np.ndarray:
    """``[N, 2]`` coordinates: PCA by SVD of the centred vectors, or scikit-learn's t-SNE.

    Example:
        >>> project_2d(np.random.default_rng(0).normal(size=(10, 4))).shape
        (10, 2)
    """
    if method not in PROJECTIONS:
        raise ConfigError(f"projection must be one of {PROJECTIONS}, got {method!r}")
    if method == "tsne":
        from sklearn.manifold import TSNE  # lazy: scikit-learn only for t-SNE

        perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    max_iter=max(250, tsne_iterations)).fit_transform(vectors)
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coordinates = centred @ components[:2].T
    return np.pad(coordinates, ((0, 0), (0, 2 - coordinates.shape[1])))


def write_projector(out_dir: str | os.PathLike, vectors, ids: Sequence[str], titles: Sequence[str] | None = None,
                    paths: Sequence[Sequence[str]] | None = None, png: bool = True, projection: str = "pca",
                    max_png_points: int = 20_000, seed: int = 0) -> dict[str, Path]:
    """Writes the projector files (and the PNG) for ``vectors`` with their metadata.

    Args:
        out_dir: Directory to write into (created).
        vectors: ``[N, D]`` embeddings.
        ids: ``N`` product ids.
        titles: ``N`` titles (optional).
        paths: ``N`` category paths, each a sequence of names from level 1 down (optional; shorter paths
            leave the deeper level columns empty).
        png: Also write ``scatter.png``.
        projection: ``pca`` or ``tsne`` for the PNG.
        max_png_points: Plot a seeded random sample of at most this many points.

    Returns:
        ``{"vectors": ..., "metadata": ..., "config": ..., "png": ...}`` paths.
    """
    ids = [str(i) for i in ids]
    vectors = check_vectors(vectors, "vectors", ids=ids)
    if len(ids) != len(vectors) or (titles is not None and len(titles) != len(ids)) or (
            paths is not None and len(paths) != len(ids)):
        raise EmbeddingError("ids, titles and paths need one entry per vector")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"vectors": out_dir / "vectors.tsv", "metadata": out_dir / "metadata.tsv",
               "config": out_dir / "projector_config.pbtxt"}
    write_text_atomically(written["vectors"], "".join("\t".join(f"{value:.6g}" for value in row) + "\n" for row in vectors))
    num_levels = max((len(path) for path in paths), default=0) if paths is not None else 0
    header = ["id"] + (["title"] if titles is not None else []) + [f"level_{level}" for level in range(1, num_levels + 1)]
    lines = ["\t".join(header)] if len(header) > 1 else []  # the projector reads a single column without a header
    for row, product_id in enumerate(ids):
        cells = [product_id] + ([titles[row]] if titles is not None else [])
        if paths is not None:
            cells += list(paths[row]) + [""] * (num_levels - len(paths[row]))
        lines.append("\t".join(_cell(cell) for cell in cells))
    write_text_atomically(written["metadata"], "\n".join(lines) + "\n")
    write_text_atomically(written["config"], 'embeddings {\n  tensor_name: "products"\n  tensor_path: "vectors.tsv"\n'
                                   '  metadata_path: "metadata.tsv"\n}\n')
    if png:
        level_1 = [path[0] if len(path) else "" for path in paths] if paths is not None else None
        written["png"] = write_scatter(out_dir / "scatter.png", vectors, level_1, projection, max_png_points, seed)
    return written


def write_scatter(path: str | os.PathLike, vectors: np.ndarray, labels: Sequence[str] | None = None,
                  projection: str = "pca", max_points: int = 20_000, seed: int = 0) -> Path:
    """A 2-D scatter of ``vectors`` coloured by ``labels`` (the most frequent ones get a legend)."""
    import matplotlib  # lazy: matplotlib only for the PNG

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as matplotlib

    path = Path(path)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), size=min(max_points, len(vectors)), replace=False))
    coordinates = project_2d(vectors[sample], projection, seed)
    figure, axes = plt.subplots(figsize=(8, 7), dpi=100)
    if labels is None:
        axes.scatter(coordinates[:, 0], coordinates[:, 1], s=4, alpha=0.6)
    else:
        sampled = [labels[i] for i in sample]
        frequent = [label for label, _ in Counter(sampled).most_common(_MAX_LEGEND)]
        colours = plt.get_cmap("tab20")
        for number, label in enumerate(frequent):
            chosen = np.array([value == label for value in sampled])
            axes.scatter(coordinates[chosen, 0], coordinates[chosen, 1], s=4, alpha=0.6, color=colours(number % 20),
                         label=label or "(none)")
        rest = np.array([value not in frequent for value in sampled])
        if rest.any():
            axes.scatter(coordinates[rest, 0], coordinates[rest, 1], s=4, alpha=0.4, color="lightgrey", label="other")
        axes.legend(markerscale=3, fontsize=8, loc="best", title="level 1")
    axes.set_title(f"Product embeddings ({projection.upper()}, {len(sample)} of {len(vectors)} products)")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:  # ".png": savefig picks the format by it
        figure.savefig(temporary)
    plt.close(figure)
    return path
