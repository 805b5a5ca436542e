"""Product embeddings: embed a catalog, nearest neighbours (exact in TF, approximate with faiss), matching,
projector files.

Importing this package does not import TensorFlow; each entry point imports what it needs when called.

Example:
    >>> import numpy as np
    >>> from linnet.embeddings import exact_top_k
    >>> scores, indices = exact_top_k(np.eye(3), np.eye(3), k=1)
    >>> indices[:, 0].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_LAZY = {
    "check_vectors": "linnet.embeddings.vectors",
    "l2_normalize": "linnet.embeddings.vectors",
    "exact_top_k": "linnet.embeddings.neighbours",
    "NeighbourIndex": "linnet.embeddings.neighbours",
    "add_neighbours_signature": "linnet.embeddings.neighbours",
    "ApproximateIndex": "linnet.embeddings.ann",
    "recall_at_k": "linnet.embeddings.ann",
    "build_index": "linnet.embeddings.index_files",
    "load_index": "linnet.embeddings.index_files",
    "embed_catalog": "linnet.embeddings.embed",
    "load_embeddings": "linnet.embeddings.embed",
    "load_embedder": "linnet.embeddings.embed",
    "match": "linnet.embeddings.matching",
    "write_projector": "linnet.embeddings.projector",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
