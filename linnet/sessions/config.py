"""Settings of `linnet sessions train` (TensorFlow-free): item2vec, the default recommender, the run.

``--config FILE`` is YAML with any of these keys (unknown keys are an error), e.g.::

    min_items: 5
    item2vec: {dim: 50, window: 5, negatives: 5, epochs: 5}
    recommender: {decay_days: 30, vector_weight: 0.2}
"""

from __future__ import annotations

import dataclasses

from linnet.config_fields import config_from_dict, config_to_dict


@dataclasses.dataclass
class Item2VecConfig:
    """Skip-gram settings (defaults as in word2vec / the Best Buy design where they say)."""

    dim: int = 50
    window: int = 5
    negatives: int = 5
    subsample: float = 1e-3
    epochs: int = 5
    batch_size: int = 1024
    learning_rate: float = 0.005
    seed: int = 0
    strategy: str = "default"


@dataclasses.dataclass
class RecommenderParams:
    """Weights of the default recommender (module docstring): recency and decay in days, γ, δ.

    γ and δ were chosen on a validation split inside the shared file's training period (train before
    2010-06-01, test the first basket after), never on its test period: see docs/sessions.md."""

    recency_days: float = 365.0
    decay_days: float = 30.0
    vector_weight: float = 0.2
    popularity_weight: float = 0.5
    max_history: int = 500


@dataclasses.dataclass
class SessionsConfig:
    """The whole run: users with fewer than ``min_items`` known events are left out of item2vec (Best Buy);
    ``neighbours`` co-occurring items are kept per item; popularity counts the last ``popularity_days``."""

    min_items: int = 5
    neighbours: int = 100
    popularity_days: float = 90.0
    item2vec: Item2VecConfig = dataclasses.field(default_factory=Item2VecConfig)
    recommender: RecommenderParams = dataclasses.field(default_factory=RecommenderParams)

    @classmethod
    def from_dict(cls, data: dict | None) -> SessionsConfig:
        return config_from_dict(cls, data)

    def to_dict(self) -> dict:
        return config_to_dict(self)
