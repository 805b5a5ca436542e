"""``linnet sessions export``: the default recommender as a SavedModel in TF Serving layout, and
``linnet sessions recommend`` over either a run directory or that export.

``BASE/<name>/<version>/`` holds ``saved_model.pb``, ``variables/`` and ``MODEL_CARD.md``; signatures:

- ``recommend``: ``item_ids`` ``tf.string [B, L]`` (``""`` pads), ``timestamps`` ``tf.int64 [B, L]``
  (seconds), ``k`` ``tf.int32 []`` → ``item_ids [B, k]``, ``scores [B, k]``, ``unknown_items [B]``
  (ids the model does not know: ignored and counted, never an error);
- ``item_vectors``: ``item_ids`` ``tf.string [N]`` → ``vectors [N, D]``, ``known [N]``.

The export saves the very ``tf.Module`` that scores in Python (`linnet.sessions.recommender`), so it
reproduces ``recommend`` exactly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from linnet.atomic_files import atomic_directory
from linnet.errors import ConfigError
from linnet.serving.artifacts import EXPORT, artifact_kind
from linnet.serving.export import next_version
from linnet.sessions.runs import load_model
from linnet.sessions.sequences import ItemVocabulary, build_sequences

SIGNATURES = ("recommend", "item_vectors")


def export_recommender(run_dir, base_dir, name: str = "sessions", version: int | None = None) -> Path:
    """Writes ``base_dir/name/version`` (the next free version by default; never overwrites one)."""
    model = load_model(run_dir)
    recommender = model.recommender()
    model_dir = Path(base_dir) / name
    version = next_version(model_dir) if version is None else int(version)
    target = model_dir / str(version)
    if target.exists():
        raise ConfigError(f"{target} exists; an export never overwrites a version")
    with atomic_directory(target) as temporary:
        tf.saved_model.save(recommender, str(temporary), signatures={
            "recommend": recommender.recommend.get_concrete_function(),
            "item_vectors": recommender.item_vectors.get_concrete_function()})
        (temporary / "MODEL_CARD.md").write_text(
            f"# {name} {version}\n\nSessions recommender exported from `{run_dir}`: {len(model.vocabulary)} items, "
            f"{model.vectors.shape[1]}-dimensional item vectors. Signatures: {', '.join(SIGNATURES)}.\n",
            encoding="utf-8")
    return target


@dataclasses.dataclass
class Histories:
    """Users' latest events as padded strings: ``item_ids [U, L]`` (``""`` pads), ``timestamps [U, L]``."""

    users: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray


def histories_from_log(frame, max_history: int) -> Histories:
    """Each user's last ``max_history`` events of an `EventLog.frame`, in order (vectorised)."""
    own = ItemVocabulary.from_items(frame["item"])  # the file's own items: no id is unknown here
    sequences = build_sequences(frame, own)
    items, times = sequences.padded(max_history)
    ids = np.where(items >= 0, own.ids[np.maximum(items, 0)], "").astype(str)
    return Histories(sequences.users, ids, times)


def load_recommend_function(source):
    """``recommend(item_ids, timestamps, k)`` of a sessions run directory or of an export."""
    if artifact_kind(source, required=False) == EXPORT:
        return tf.saved_model.load(str(source)).signatures["recommend"]
    recommender = load_model(source).recommender()
    return lambda item_ids, timestamps, k: recommender.recommend(item_ids, timestamps, k)


def recommend_histories(recommend, histories: Histories, k: int, batch_size: int = 256) -> dict:
    """``{"item_ids" [U, k], "scores" [U, k], "unknown_items" [U]}`` over all users, in batches."""
    parts = {"item_ids": [], "scores": [], "unknown_items": []}
    for start in range(0, len(histories.users), batch_size):
        out = recommend(item_ids=tf.constant(histories.item_ids[start:start + batch_size]),
                        timestamps=tf.constant(histories.timestamps[start:start + batch_size], tf.int64),
                        k=tf.constant(k, tf.int32))
        for key, values in parts.items():
            values.append(out[key].numpy())
    if not parts["item_ids"]:
        return {"item_ids": np.zeros((0, k), object), "scores": np.zeros((0, k), np.float32),
                "unknown_items": np.zeros(0, np.int32)}
    return {key: np.concatenate(value) for key, value in parts.items()}
