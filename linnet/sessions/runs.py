"""`linnet sessions train / evaluate / recommend` as library calls, and the run directory they share.

A sessions run directory holds ``config.json`` (event schema, cleaning rules, `SessionsConfig`),
``items.tsv`` (item id, title, training events; the row is the item's index), ``item_vectors.npy``,
``neighbours.npz``, ``popularity.npy``, ``metrics.json``, ``README.md`` and ``mlflow.db``. Every file is
written atomically; ``--out`` never overwrites a run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np

from linnet.atomic_files import (
    atomic_path,
    write_json_atomically,
    write_text_atomically,
)
from linnet.errors import ConfigError
from linnet.sessions import baselines
from linnet.sessions.config import SessionsConfig
from linnet.sessions.cooccurrence import NeighbourTable, cooccurrence_neighbours
from linnet.sessions.events import CleaningRules, EventLog, EventSchema
from linnet.sessions.metrics import all_metrics
from linnet.sessions.sequences import ItemVocabulary, build_sequences, min_items_filter
from linnet.sessions.user_vectors import cosine_scores, user_vectors

CONFIG_FILE = "config.json"
ITEMS_FILE = "items.tsv"
VECTORS_FILE = "item_vectors.npy"
NEIGHBOURS_FILE = "neighbours.npz"
POPULARITY_FILE = "popularity.npy"
METRICS_FILE = "metrics.json"
README_FILE = "README.md"
RECOMMENDATION_COLUMNS = ["user_id", "rank", "item_id", "score", "error"]


@dataclasses.dataclass
class SessionModel:
    """Everything a trained sessions run holds."""

    schema: EventSchema
    rules: CleaningRules
    config: SessionsConfig
    vocabulary: ItemVocabulary
    titles: np.ndarray
    vectors: np.ndarray
    neighbours: NeighbourTable
    popularity: np.ndarray
    metrics: dict

    def recommender(self):
        from linnet.sessions.recommender import SessionRecommender  # lazy: TensorFlow

        return SessionRecommender(self.vocabulary.ids, self.vectors, self.neighbours, self.popularity,
                                  self.config.recommender)


def fit_model(log: EventLog, schema: EventSchema, rules: CleaningRules, config: SessionsConfig,
              progress: bool = False, callbacks=()) -> SessionModel:
    """Vocabulary, item2vec (users with ``min_items``+ events), co-occurrence neighbours and popularity."""
    from linnet.sessions.item2vec import train_item2vec  # lazy: TensorFlow

    vocabulary = ItemVocabulary.from_items(log.frame["item"])
    sequences = build_sequences(log.frame, vocabulary)
    embedding_users = min_items_filter(sequences, config.min_items)
    if not len(embedding_users):
        raise ConfigError(f"no user has {config.min_items} events or more (min_items); lower it")
    started = time.perf_counter()
    item2vec = train_item2vec(embedding_users, vocabulary.counts, config.item2vec, callbacks=callbacks,
                              progress=progress)
    neighbours = cooccurrence_neighbours(sequences, len(vocabulary), config.neighbours)
    popularity = baselines.recent_popularity(sequences, len(vocabulary), config.popularity_days)
    titles = log.titles()
    metrics = {"events": log.report.to_dict(), "users": len(sequences), "items": len(vocabulary),
               "item2vec_users": len(embedding_users), "item2vec_seconds": item2vec.seconds,
               "item2vec_pairs_per_epoch": item2vec.pairs_per_epoch, "item2vec_loss": item2vec.history["loss"],
               "train_seconds": time.perf_counter() - started}
    return SessionModel(schema, rules, config, vocabulary,
                        np.array([titles.get(item, "") for item in vocabulary.ids], dtype=object),
                        item2vec.vectors, neighbours, popularity, metrics)


def write_model(model: SessionModel, run_dir: Path) -> None:
    write_json_atomically(run_dir / CONFIG_FILE, {"schema": model.schema.to_dict(), "cleaning": model.rules.to_dict(),
                                                  "config": model.config.to_dict()})
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["item_id", "title", "events"])
    writer.writerows(zip(model.vocabulary.ids, model.titles, model.vocabulary.counts))
    write_text_atomically(run_dir / ITEMS_FILE, buffer.getvalue())
    for name, array in ((VECTORS_FILE, model.vectors), (POPULARITY_FILE, model.popularity)):
        with atomic_path(run_dir / name, suffix=".npy") as temporary:
            np.save(temporary, array)
    with atomic_path(run_dir / NEIGHBOURS_FILE, suffix=".npz") as temporary:
        np.savez(temporary, ids=model.neighbours.ids, weights=model.neighbours.weights)
    write_json_atomically(run_dir / METRICS_FILE, model.metrics)


def load_model(run_dir) -> SessionModel:
    """Reads a run directory written by `train_run`.

    Raises:
        ConfigError: a file of the run is missing.
    """
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, ITEMS_FILE, VECTORS_FILE, NEIGHBOURS_FILE, POPULARITY_FILE):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} is not a sessions run directory: {name} is missing")
    stored = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    with open(run_dir / ITEMS_FILE, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    ids = np.array([row[0] for row in rows], dtype=object)
    neighbours = np.load(run_dir / NEIGHBOURS_FILE)
    metrics_path = run_dir / METRICS_FILE
    return SessionModel(EventSchema.from_dict(stored["schema"]), CleaningRules.from_dict(stored["cleaning"]),
                        SessionsConfig.from_dict(stored["config"]),
                        ItemVocabulary(ids, np.array([int(row[2]) for row in rows], dtype=np.int64)),
                        np.array([row[1] for row in rows], dtype=object), np.load(run_dir / VECTORS_FILE),
                        NeighbourTable(neighbours["ids"], neighbours["weights"]), np.load(run_dir / POPULARITY_FILE),
                        json.loads(metrics_path.read_text()) if metrics_path.is_file() else {})


def train_run(events_path, out_dir, schema: EventSchema, rules: CleaningRules | None = None,
              config: SessionsConfig | None = None, progress: bool = True) -> SessionModel:
    """``linnet sessions train``: reads and cleans the events, fits the model, writes the run directory and
    an MLflow run (params, item2vec loss per epoch, metrics, files) to ``RUN/mlflow.db``."""
    from linnet.sessions.events import read_events
    from linnet.training.run_directory import STATE_DIR, prepare_run_directory
    from linnet.training.tracking import MlflowTracker  # lazy: Keras and MLflow

    rules = rules or CleaningRules()
    config = config or SessionsConfig()
    out_dir = Path(out_dir)
    log = read_events(events_path, schema, rules)  # a bad file fails before the run directory is made
    if progress:
        print(log.report.summary())
    out_dir = prepare_run_directory(out_dir)  # refuses a directory that is not empty
    with MlflowTracker(out_dir, run_name=out_dir.name) as tracker:
        tracker.set_tags({"linnet.kind": "sessions"})
        tracker.log_params({"schema": schema.to_dict(), "cleaning": rules.to_dict(), **config.to_dict(),
                            "events": str(events_path)})
        model = fit_model(log, schema, rules, config, progress=progress, callbacks=[tracker.keras_callback()])
        write_model(model, out_dir)
        tracker.log_metrics({key: value for key, value in model.metrics.items()
                             if not isinstance(value, (list, dict))})
        write_text_atomically(out_dir / README_FILE, run_readme(model, events_path))
        for name in (CONFIG_FILE, ITEMS_FILE, METRICS_FILE, README_FILE):
            tracker.log_artifact(out_dir / name)
    (out_dir / STATE_DIR).rmdir()
    return model


def run_readme(model: SessionModel, events_path) -> str:
    metrics = model.metrics
    return (f"# Sessions run\n\nTrained on `{events_path}`: {metrics['events']['kept']} events of "
            f"{metrics['users']} users, {metrics['items']} items; item2vec ({model.config.item2vec.dim} dimensions, "
            f"{model.config.item2vec.epochs} epochs) on the {metrics['item2vec_users']} users with "
            f"{model.config.min_items}+ events in {metrics['item2vec_seconds']:.1f} s.\n\n"
            f"Dropped rows: {json.dumps(metrics['events']['dropped'])}.\n\n"
            "Files: config.json, items.tsv, item_vectors.npy, neighbours.npz, popularity.npy, metrics.json, "
            "mlflow.db. `linnet sessions evaluate|recommend|export` read them.\n")


# ------------------------------------------------------------------------------------------- evaluation
def evaluate_split(model: SessionModel, train_log: EventLog, test_users, test_items, ks=(10, 20),
                   extra_scores: dict | None = None) -> list[dict]:
    """Metrics of the default recommender and the baselines on a time split: the histories are each test
    user's events in ``train_log``, the targets ``test_items`` (their next basket). One row per method."""
    from linnet.sessions.recommender import score_in_batches  # lazy: TensorFlow

    vocabulary = model.vocabulary
    sequences = build_sequences(train_log.frame, vocabulary)
    targets_of = dict(zip(test_users, test_items))
    histories = sequences.select(np.isin(sequences.users, list(targets_of))).known_only()
    wanted = [targets_of[user] for user in histories.users]  # one vocabulary lookup for every user's basket
    targets = np.split(vocabulary.index(np.concatenate(wanted)) if wanted else np.zeros(0, np.int32),
                       np.cumsum([len(items) for items in wanted])[:-1])
    num_items = len(vocabulary)
    k = max(ks)
    latest = np.zeros(len(histories), dtype=np.int64)
    np.maximum.at(latest, histories.owner(), histories.times)
    rows = []

    def add(name, recommended, seconds=None):
        row = {"method": name, **all_metrics(recommended, targets, num_items, ks)}
        if seconds is not None:
            row["score seconds"] = seconds
        rows.append(row)

    started = time.perf_counter()
    items, times = histories.padded(model.config.recommender.max_history)
    recommended, _ = score_in_batches(model.recommender(), items, times, k)
    add("default (repeat-aware + neighbours + item2vec)", recommended, time.perf_counter() - started)
    scored = {
        "popularity (last 90 days)": lambda: baselines.popularity_scores(model.popularity, histories),
        "own past items (frequency, recency)": lambda: baselines.repeat_scores(histories, latest, num_items,
                                                                                model.popularity),
        "item co-occurrence (item-kNN)": lambda: baselines.item_knn_scores(histories, model.neighbours, num_items),
        "item2vec + time-decayed user vector": lambda: 1.0 + cosine_scores(
            user_vectors(histories, model.vectors, model.config.recommender.decay_days), model.vectors),
        **(extra_scores or {}),
    }
    for name, scores in scored.items():
        started = time.perf_counter()
        matrix = scores(histories) if name in (extra_scores or {}) else scores()
        add(name, baselines.top_k(matrix, k), time.perf_counter() - started)
    for row in rows:
        row["users"] = len(targets)
    return rows
