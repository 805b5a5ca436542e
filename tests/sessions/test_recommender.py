"""item2vec, the default recommender, the export and the commands, on a tiny planted log (module-scoped:
one small training run serves every test)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf

from linnet.cli.main import main
from linnet.sessions.config import Item2VecConfig, RecommenderParams, SessionsConfig
from linnet.sessions.events import CleaningRules, read_events
from linnet.sessions.export import (
    export_recommender,
    histories_from_log,
    load_recommend_function,
    recommend_histories,
)
from linnet.sessions.recommender import SessionRecommender
from linnet.sessions.runs import fit_model, write_model
from linnet.sessions.sequences import build_sequences
from linnet.sessions.user_vectors import cosine_scores, user_vectors
from linnet.sessions.vectors import (
    apply_title_map,
    fit_title_map,
    item_neighbours,
    nearest,
)

from .conftest import SCHEMA_FLAGS
from .test_events import SCHEMA

TINY = SessionsConfig(item2vec=Item2VecConfig(dim=8, epochs=3, batch_size=256, learning_rate=0.02, subsample=0.0))


@pytest.fixture(scope="module")
def trained(planted_csv, tmp_path_factory):
    log = read_events(planted_csv, SCHEMA)
    model = fit_model(log, SCHEMA, CleaningRules(), TINY)
    run_dir = tmp_path_factory.mktemp("run")
    write_model(model, run_dir)
    return log, model, run_dir


def group_of(items):
    return np.array([str(item).split("_")[0] for item in items])


def test_item2vec_recovers_the_planted_co_purchase_groups(trained):
    _, model, _ = trained
    order, _ = nearest(model.vectors, model.vectors, k=3, exclude=np.arange(len(model.vectors)))
    groups = group_of(model.vocabulary.ids)
    assert (groups[order] == groups[:, None]).mean() >= 0.95
    rows = item_neighbours(model, [model.vocabulary.ids[0]], k=2)
    assert rows[0][4].startswith(f"group {groups[0][1:]}")  # the neighbour's title is printed with it


def test_recommendations_come_from_the_users_own_group_and_history_first(trained):
    log, model, _ = trained
    histories = histories_from_log(log.frame, 500)
    out = recommend_histories(load_recommend_function_from(model), histories, k=6)
    user_groups = np.array([f"g{int(user[1:]) % 4}" for user in histories.users])
    top = np.vectorize(lambda value: value.decode())(out["item_ids"])
    assert (group_of(top.ravel()).reshape(top.shape) == user_groups[:, None]).all()
    assert (out["unknown_items"] == 0).all()


def load_recommend_function_from(model):
    recommender = model.recommender()
    return lambda item_ids, timestamps, k: recommender.recommend(item_ids, timestamps, k)


def test_a_user_with_only_unknown_items_still_gets_an_answer(trained):
    _, model, _ = trained
    recommender = model.recommender()
    out = recommender.recommend(tf.constant([["new-1", "new-2", ""]]), tf.constant([[1, 2, 0]], tf.int64),
                                tf.constant(3))
    assert int(out["unknown_items"][0]) == 2  # "" pads and is not counted
    popular = model.vocabulary.ids[np.argsort(-model.popularity, kind="stable")[:3]]
    assert {value.decode() for value in out["item_ids"][0].numpy()} <= set(model.vocabulary.ids)
    assert out["item_ids"][0, 0].numpy().decode() in set(popular)


def test_the_fill_uses_the_time_decayed_user_vector_of_the_formula(trained):
    log, model, _ = trained
    only_vectors = SessionRecommender(model.vocabulary.ids, model.vectors, model.neighbours, model.popularity,
                                      RecommenderParams(vector_weight=1.0, popularity_weight=0.0, decay_days=7.0))
    sequences = build_sequences(log.frame, model.vocabulary)
    items, times = sequences.padded()
    scores = only_vectors.score_indices(tf.constant(items[:5]), tf.constant(times[:5])).numpy()
    expected = 0.5 * np.maximum(cosine_scores(user_vectors(sequences.select(np.arange(len(sequences)) < 5),
                                                           model.vectors, 7.0), model.vectors), 0.0)
    never_bought = scores < 0.5
    np.testing.assert_allclose(scores[never_bought], expected[never_bought], atol=1e-5)


def test_the_export_reproduces_recommend_exactly(trained, tmp_path):
    log, model, run_dir = trained
    version = export_recommender(run_dir, tmp_path / "exports")
    assert (version / "saved_model.pb").is_file() and version.name == "1"
    loaded = tf.saved_model.load(str(version))
    assert set(loaded.signatures) == {"recommend", "item_vectors"}
    histories = histories_from_log(log.frame, 500)
    histories.item_ids[0, 0] = "never-seen"
    from_export = recommend_histories(load_recommend_function(version), histories, k=5)
    from_library = recommend_histories(load_recommend_function(run_dir), histories, k=5)
    for key in ("item_ids", "scores", "unknown_items"):
        np.testing.assert_array_equal(from_export[key], from_library[key])
    assert from_export["unknown_items"][0] == 1
    vectors = loaded.signatures["item_vectors"](item_ids=tf.constant([model.vocabulary.ids[0], "nope"]))
    np.testing.assert_array_equal(vectors["vectors"][0].numpy(), model.vectors[0])
    assert list(vectors["known"].numpy()) == [True, False]


def test_cold_start_maps_titles_into_the_item_space():
    rng = np.random.default_rng(0)
    title_vectors = rng.normal(size=(40, 6)).astype(np.float32)
    planted = rng.normal(size=(6, 4)).astype(np.float32)
    item_vectors = title_vectors @ planted
    weights = fit_title_map(title_vectors[:30], item_vectors[:30], ridge=1e-6)
    mapped = apply_title_map(weights, title_vectors[30:])  # "new stock": never in a sequence
    np.testing.assert_allclose(mapped, item_vectors[30:], atol=1e-3)
    order, _ = nearest(mapped, item_vectors, k=1)
    assert list(order[:, 0]) == list(range(30, 40))


def test_commands_train_then_recommend_for_every_user(planted_csv, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("item2vec: {dim: 8, epochs: 1, batch_size: 256}\n")
    history = tmp_path / "history.csv"
    with open(planted_csv, encoding="utf-8") as source:
        lines = source.read().splitlines()
    # columns: order, sku, qty, when, customer, name
    extra = ["x1,unknown-sku,1,2021-01-01 00:00:00,newcomer,new", "x2,g0_1,-1,2021-01-01 00:00:00,returner,back"]
    history.write_text("\n".join(lines[:40] + extra) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["sessions", "train", "--events", str(planted_csv), "--out", str(run), "--config", str(config),
                 "--no-progress", *SCHEMA_FLAGS]) == 0
    assert (run / "mlflow.db").is_file() and (run / "item_vectors.npy").is_file()
    assert main(["sessions", "train", "--events", str(planted_csv), "--out", str(run), *SCHEMA_FLAGS]) == 2
    out = tmp_path / "recs.csv"
    assert main(["sessions", "recommend", "--model", str(run), "--events", str(history), "--k", "3",
                 "--out", str(out)]) == 0
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    users = {line.split(",")[4] for line in lines[1:40]} | {"newcomer", "returner"}
    assert {row["user_id"] for row in rows} == users
    assert [row["rank"] for row in rows if row["user_id"] == "newcomer"] == ["1", "2", "3"]
    assert next(row["error"] for row in rows if row["user_id"] == "returner").startswith("no usable event")


def test_projector_files_and_map_of_the_item_vectors(trained, tmp_path):
    from linnet.sessions.vectors import write_item_projector

    _, model, _ = trained
    written = write_item_projector(model, tmp_path / "projector", projection="pca")
    assert written["png"].stat().st_size > 1000
    lines = written["metadata"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\ttitle" and len(lines) == len(model.vocabulary) + 1
    assert lines[1].split("\t") == [model.vocabulary.ids[0], model.titles[0]]


def test_cold_start_command_adds_new_items_that_can_be_recommended(trained, tmp_path):
    import keras

    from linnet.encoders import build_text_encoder
    from linnet.sessions.runs import load_model

    _, _, run_dir = trained
    keras.utils.set_random_seed(0)
    title = keras.Input(shape=(), dtype="string", name="title")
    encoded = build_text_encoder("hashed_ngrams", ["title"], num_bins=4096, embedding_dim=32)({"title": title})
    embedding = keras.layers.UnitNormalization(name="embedding")(encoded)
    linnet_model = tmp_path / "titles.keras"
    keras.Model({"title": title}, {"embedding": embedding}).save(linnet_model)
    new_items = tmp_path / "new.csv"
    new_items.write_text("code,label\n" + "".join(f"new{g},group {g} thing 9\n" for g in range(4)), encoding="utf-8")
    out = tmp_path / "with_new"
    assert main(["sessions", "cold-start", "--model", str(run_dir), "--title-model", str(linnet_model),
                 "--items", str(new_items), "--id-column", "code", "--item-title-column", "label",
                 "--out", str(out)]) == 0
    extended = load_model(out)
    new = extended.vocabulary.index([f"new{g}" for g in range(4)])
    assert (new >= 0).all() and len(extended.vocabulary) == 24 + 4
    order, _ = nearest(extended.vectors[new], extended.vectors[:24], k=1)
    assert (group_of(extended.vocabulary.ids[order[:, 0]]) == [f"g{g}" for g in range(4)]).sum() >= 3
    recommender = extended.recommender()
    out_ids = recommender.recommend(tf.constant([["new2"]]), tf.constant([[0]], tf.int64), tf.constant(3))
    assert int(out_ids["unknown_items"][0]) == 0 and out_ids["item_ids"][0, 0].numpy() == b"new2"
