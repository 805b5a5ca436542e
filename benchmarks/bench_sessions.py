"""Shopping sequences: the default recommender against every baseline on the shared retail file's time split.

Data: ``../shared/data/sessions/online_retail_ii_2009_2010.csv`` cleaned by its README's rule (customer
present, no ``C``/``A`` invoices, quantity > 0, stock codes starting with a digit). Train on every event
before 2010-09-01; test on each returning customer's first basket from that date (all its items are
targets). Every method sees only the training events.

Tables: hit-rate@10, recall@20, MRR@10, coverage@10 and training / scoring time per method; item2vec in
Keras (`linnet.sessions.item2vec`) vs gensim's ``Word2Vec`` on the same sequences (time, neighbour
agreement); the default's margins over the best baseline; cosine neighbours of sample items with titles.

Run: ``python -m benchmarks sessions`` (``LINNET_SESSIONS_EPOCHS`` sets item2vec epochs, default 5).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from linnet.sessions.config import SessionsConfig
from linnet.sessions.events import CleaningRules, EventLog, EventSchema, read_events
from linnet.sessions.sequences import build_sequences, min_items_filter, time_split
from linnet.sessions.user_vectors import cosine_scores, user_vectors

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LINNET_SHARED_DATA", REPO.parent / "shared" / "data")) / "sessions" \
    / "online_retail_ii_2009_2010.csv"
CUTOFF = "2010-09-01"
SCHEMA = EventSchema(user_column="customer_id", item_column="stock_code", time_column="invoice_date",
                     basket_column="invoice", quantity_column="quantity", title_column="description")
RULES = CleaningRules(cancel_basket_prefixes=("C", "A"), exclude_items="[^0-9].*")
DEFAULT = "default (repeat-aware + neighbours + item2vec)"
SAMPLE_ITEMS = 3


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def _gensim_vectors(sequences, vocabulary, config):
    from gensim.models import Word2Vec  # lazy: the peer only

    sentences = [[str(item) for item in sequences.items_of(user) if item >= 0] for user in range(len(sequences))]
    started = time.perf_counter()
    model = Word2Vec(sentences, vector_size=config.dim, window=config.window, negative=config.negatives,
                     sample=config.subsample, sg=1, min_count=1, epochs=config.epochs, workers=2, seed=config.seed)
    seconds = time.perf_counter() - started
    vectors = np.zeros((len(vocabulary), config.dim), dtype=np.float32)
    for index in range(len(vocabulary)):
        if str(index) in model.wv:
            vectors[index] = model.wv[str(index)]
    return vectors, seconds


def _neighbour_agreement(a: np.ndarray, b: np.ndarray, items: np.ndarray, k: int = 10) -> float:
    from linnet.sessions.vectors import nearest

    first, _ = nearest(a[items], a, k, exclude=items)
    second, _ = nearest(b[items], b, k, exclude=items)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(first, second)]))


def run() -> dict:
    if not DATA.is_file():
        return {"sessions": [{"note": f"retail file not found at {DATA}"}]}
    from linnet.sessions.network import network_scores, train_network
    from linnet.sessions.runs import evaluate_split, fit_model
    from linnet.sessions.vectors import nearest

    load_before = _load()
    started = time.perf_counter()
    log = read_events(DATA, SCHEMA, RULES)
    read_seconds = time.perf_counter() - started
    split = time_split(log.frame, int(pd.Timestamp(CUTOFF).value // 10**9))
    train_log = EventLog(split.train, log.report)
    config = SessionsConfig()
    config.item2vec.epochs = int(os.environ.get("LINNET_SESSIONS_EPOCHS", config.item2vec.epochs))
    model = fit_model(train_log, SCHEMA, RULES, config, progress=False)
    keras_seconds = model.metrics["item2vec_seconds"]
    sequences = build_sequences(split.train, model.vocabulary)
    embedding_users = min_items_filter(sequences, config.min_items)
    gensim_vectors, gensim_seconds = _gensim_vectors(embedding_users, model.vocabulary, config.item2vec)
    started = time.perf_counter()
    network = train_network(sequences, model.vectors, config.recommender.decay_days, epochs=5)
    network_seconds = time.perf_counter() - started
    decay = config.recommender.decay_days
    extra = {
        "gensim item2vec + time-decayed user vector":
            lambda histories: 1.0 + cosine_scores(user_vectors(histories, gensim_vectors, decay), gensim_vectors),
        "Best Buy network (Keras item2vec user vector -> Dense/ReLU/Dropout/BN -> softmax)":
            lambda histories: network_scores(network, histories, model.vectors, decay),
    }
    rows = evaluate_split(model, train_log, split.test_users, split.test_items, extra_scores=extra)
    neighbour_seconds = model.metrics["train_seconds"] - keras_seconds
    train_seconds = {DEFAULT: model.metrics["train_seconds"], "item co-occurrence (item-kNN)": neighbour_seconds,
                     "item2vec + time-decayed user vector": keras_seconds,
                     "gensim item2vec + time-decayed user vector": gensim_seconds,
                     "popularity (last 90 days)": 0.0, "own past items (frequency, recency)": 0.0}
    table = []
    for row in rows:
        name = row["method"]
        seconds = train_seconds.get(name, network_seconds + keras_seconds if name.startswith("Best Buy") else None)
        table.append({"method": name, "hit_rate@10": row["hit_rate@10"], "recall@20": row["recall@20"],
                      "mrr@10": row["mrr@10"], "coverage@10": row["coverage@10"], "train s": seconds,
                      "score s": row.get("score seconds"), "test users": row["users"]})
    baselines = [row for row in table if row["method"] != DEFAULT]
    default = next(row for row in table if row["method"] == DEFAULT)
    margins = []
    for metric in ("hit_rate@10", "mrr@10"):
        best = max(baselines, key=lambda row: row[metric])
        margins.append({"metric": metric, "default": default[metric], "best baseline": best["method"],
                        "baseline": best[metric], "margin": default[metric] - best[metric],
                        "beats it": default[metric] > best[metric]})
    rng = np.random.default_rng(0)
    sample = rng.choice(min(200, len(model.vocabulary)), size=SAMPLE_ITEMS, replace=False)
    agreement = _neighbour_agreement(model.vectors, gensim_vectors, np.arange(min(500, len(model.vocabulary))))
    peers = [{"item2vec": "Keras (linnet.sessions.item2vec, LazyAdamW, tf.data)", "train s": keras_seconds,
              "epochs": config.item2vec.epochs, "dim": config.item2vec.dim,
              "pairs per epoch": int(np.mean(model.metrics["item2vec_pairs_per_epoch"]))},
             {"item2vec": "gensim Word2Vec (sg=1, same window/negatives/sample)", "train s": gensim_seconds,
              "epochs": config.item2vec.epochs, "dim": config.item2vec.dim},
             {"item2vec": "neighbour agreement@10 (500 most frequent items)", "train s": None,
              "overlap": agreement}]
    order, scores = nearest(model.vectors[sample], model.vectors, 3, exclude=sample)
    examples = [{"item": f"{model.vocabulary.ids[i]} {model.titles[i]}",
                 "neighbours (cosine)": "; ".join(f"{model.titles[j]} ({s:.2f})" for j, s in zip(row, row_scores))}
                for i, row, row_scores in zip(sample, order, scores)]
    load_after = _load()
    title = (f"online retail II, train < {CUTOFF} ({model.metrics['users']:,} customers, {model.metrics['items']:,} "
             f"items), test = first basket after ({len(split.test_users):,} customers); read+clean "
             f"{read_seconds:.1f} s; load {load_before} -> {load_after}")
    return {f"methods: {title}": table, "default vs the best baseline": margins,
            "item2vec: Keras vs gensim": peers, "item2vec neighbours of sample items": examples}
