"""Deterministic train/validation/test split by a hash of the product id.

The same id lands in the same split on every machine, run and library version: the split depends only on
the BLAKE2b digest of ``salt + id``, never on row order or a random state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from linnet.errors import ConfigError

SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
#: Training's default (``data.split``): all but a small validation split trains; the user's own test file
#: (``linnet evaluate --catalog``, scored whole) is the test set. A held-out test slice of the training file
#: is opt-in (``data.split: [0.7, 0.15, 0.15]``).
TRAINING_FRACTIONS = (0.9, 0.1, 0.0)


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(value) for value in fractions)
    if len(values) != 3 or min(values) < 0 or not np.isclose(sum(values), 1.0):
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    return values  # type: ignore[return-value]


def id_hash_fraction(ids: Sequence[str], salt: str = "") -> np.ndarray:
    """A number in ``[0, 1)`` per id, uniform and stable: the first 8 bytes of BLAKE2b(salt + id)."""
    prefix = salt.encode("utf-8")
    digests = b"".join(hashlib.blake2b(prefix + str(product_id).encode("utf-8"), digest_size=8).digest()
                       for product_id in ids)
    return np.frombuffer(digests, dtype=">u8").astype(np.float64) / 2.0**64


def assign_splits(ids: Sequence[str], fractions: Sequence[float] = DEFAULT_FRACTIONS, *, salt: str = "",
                  strata: Sequence | None = None) -> np.ndarray:
    """Split name per id (``"train"``, ``"validation"``, ``"test"``).

    Args:
        ids: Product ids.
        fractions: Train, validation and test fractions.
        salt: Change it to draw a different (still deterministic) split.
        strata: Optional group per id (e.g. the leaf class). Within each group ids are ranked by their hash
            and cut at the fractions, so every leaf gets its share; an id then keeps its split as long as
            its group does not change size.

    Example:
        >>> assign_splits(["a", "b", "c", "d"]).tolist() == assign_splits(["d", "c", "b", "a"])[::-1].tolist()
        True
    """
    train, validation, _ = check_fractions(fractions)
    position = id_hash_fraction(ids, salt)
    if strata is not None:
        strata = np.asarray(strata)
        if len(strata) != len(position):
            raise ValueError("strata must have one entry per id")
        # rank within each stratum (by hash), mapped to the midpoint of its slot in [0, 1)
        order = np.lexsort((position, strata))
        sorted_strata = strata[order]
        starts = np.r_[0, np.flatnonzero(sorted_strata[1:] != sorted_strata[:-1]) + 1]
        sizes = np.diff(np.r_[starts, len(order)])
        group_start = np.repeat(starts, sizes)
        group_size = np.repeat(sizes, sizes)
        rank = np.arange(len(order)) - group_start
        stratified = np.empty_like(position)
        stratified[order] = (rank + 0.5) / group_size
        position = stratified
    names = np.full(len(position), "test", dtype="<U10")
    names[position < train + validation] = "validation"
    names[position < train] = "train"
    return names
