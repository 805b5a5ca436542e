"""``model.wide.init: linear_svm``: the wide tables start as a LinearSVC on the training n-grams, frozen."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import Killed, kill_after_epoch, tiny_config

SVM_CONFIG = tiny_config(model={"wide": {"num_buckets": 1024, "init": "linear_svm", "svm_temperature": 3.0}},
                         training={"epochs": 2})


def test_featurized_matrix_reproduces_the_wide_layer():
    """X @ table equals what `HashedLinear` computes from the featurizer's ids and weights."""
    import tensorflow as tf

    from linnet.encoders.ngram import HashedNgramFeaturizer
    from linnet.model.layers import HashedLinear
    from linnet.training.wide_init import featurized_matrix

    featurizer = HashedNgramFeaturizer(text_fields=["title"], num_bins=4096)
    titles = np.array(["red cotton shirt", "hiking boots", "boots boots boots", "", "slim denim jeans"], dtype=object)
    layer = HashedLinear(256, 3, kernel_initializer="random_normal")  # 4096 ids fold onto 256 rows
    ids, weights = featurizer({"title": tf.constant(titles.astype(str))})
    expected = layer(ids, weights).numpy()
    matrix = featurized_matrix(featurizer, {"title": titles}, 256)
    assert matrix.shape == (5, 256)
    np.testing.assert_allclose(matrix @ layer.kernel.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert matrix[3].nnz == 0  # an empty title has no n-grams


def test_svm_table_is_the_linear_svm_margins_times_the_temperature():
    import scipy.sparse as sparse
    from sklearn.svm import LinearSVC

    from linnet.training.wide_init import UNSEEN_CLASS_MARGIN, svm_table

    rng = np.random.default_rng(0)
    features = sparse.random(60, 40, density=0.2, random_state=1, format="csr")
    targets = rng.integers(0, 3, 60)
    targets[:5] = -1  # no label at this level: left out of the fit
    table = svm_table(features, targets, num_classes=5, C=0.5, temperature=4.0, seed=0)
    svm = LinearSVC(C=0.5, fit_intercept=False, random_state=0).fit(features[5:], targets[5:])
    assert table.shape == (40, 5)
    np.testing.assert_allclose(table[:, :3], 4.0 * svm.coef_.T, rtol=1e-5, atol=1e-6)
    # Classes never seen in training sit below every seen class: the table's argmax is the SVM's prediction,
    # also for the rows where every seen margin is negative (a column of zeros would win those).
    np.testing.assert_array_equal(table[:, 3:], UNSEEN_CLASS_MARGIN * 4.0)
    unsure = (svm.decision_function(features) < 0).all(axis=1)
    assert unsure.any()
    normalized = sparse.csr_matrix(features.multiply(1 / np.sqrt(features.multiply(features).sum(axis=1))))
    np.testing.assert_array_equal((normalized @ table).argmax(axis=1), svm.predict(normalized))
    # Two classes: liblinear's one margin, split +/- half between them.
    pair = svm_table(features, targets % 2, num_classes=2, C=0.5, temperature=2.0, seed=0)
    margin = LinearSVC(C=0.5, fit_intercept=False, random_state=0).fit(features, targets % 2).coef_[0]
    np.testing.assert_allclose(pair[:, 1] - pair[:, 0], 2.0 * margin, rtol=1e-5, atol=1e-6)


def test_default_c_is_the_tfidf_baselines_c_on_its_scale():
    """The wide rows hold two kinds of n-grams at norm 1/sqrt(2) each; TF-IDF + LinearSVC(C=1) holds each kind
    at unit norm. The default svm_c gives the same margins on the wide rows as C=1 gives on that scale."""
    import scipy.sparse as sparse
    from sklearn.preprocessing import normalize
    from sklearn.svm import LinearSVC

    from linnet.model.config import WideConfig
    from linnet.training.wide_init import svm_table

    rng = np.random.default_rng(3)
    words = normalize(sparse.random(80, 30, density=0.15, random_state=4, format="csr") + sparse.eye(80, 30))
    characters = normalize(sparse.random(80, 50, density=0.3, random_state=5, format="csr"))
    union = sparse.hstack([words, characters]).tocsr()  # TfidfVectorizer word + char_wb: norm sqrt(2) per row
    rows = union / np.sqrt(2)                             # what the wide path reads: unit norm per row
    targets = rng.integers(0, 4, 80)
    table = svm_table(rows, targets, num_classes=4, C=WideConfig().svm_c, temperature=1.0, seed=0)
    baseline = LinearSVC(C=1.0, fit_intercept=False, random_state=0, tol=1e-6, max_iter=100_000).fit(union, targets)
    np.testing.assert_allclose(rows @ table, baseline.decision_function(union), atol=2e-3)


def _wide_and_svm_tables(model, catalog_file, schema, taxonomy, levels, temperature, n_jobs=None):
    """Per level: ``(model's wide table x its logit scale, the SVM table that the default C and training seed
    give on the training split's featurized rows)``."""
    from linnet.data import prepare_catalog
    from linnet.model.builder import wide_layer_name
    from linnet.model.config import WideConfig
    from linnet.training import wide_init
    from linnet.training.featurized import wide_featurizer_layer

    from linnet.model import with_stop_labels
    from linnet.training.config import TrainingConfig

    wide = WideConfig()
    # Training's default split, and the labels its heads train on (the stop columns of linnet.model.stops).
    train_split = prepare_catalog(catalog_file, schema, taxonomy=taxonomy,
                                  split=tuple(TrainingConfig().data.split)).subset("train")
    labels = with_stop_labels(train_split.labels, taxonomy.level_sizes())
    featurizer = wide_featurizer_layer(model)
    pairs = []
    for level in levels:
        layer = model.get_layer(wide_layer_name(level))
        features = wide_init.featurized_matrix(featurizer, train_split.texts, layer.input_dim)
        expected = wide_init.svm_table(features, labels[:, level - 1], layer.units,
                                       C=wide.svm_c, temperature=temperature, seed=42, n_jobs=n_jobs)
        pairs.append((layer.kernel.numpy() * wide.learning_rate_multiplier, expected))
    return pairs


def test_training_starts_the_wide_path_from_the_svm_and_keeps_it_frozen(tiny_catalog_file, tiny_schema,
                                                                          tiny_taxonomy, tmp_path):
    import keras

    from linnet.training.trainer import train

    run = train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=SVM_CONFIG, taxonomy=tiny_taxonomy,
                progress=False)
    model = keras.saving.load_model(run.path / "model.keras")
    levels = range(1, tiny_taxonomy.num_levels + 1)
    for table, expected in _wide_and_svm_tables(model, tiny_catalog_file, tiny_schema, tiny_taxonomy, levels,
                                                temperature=3.0, n_jobs=-1):  # SVM_CONFIG's, wide.svm_jobs' default
        assert np.abs(expected).max() > 0
        # Two epochs of training later the table is still the SVM's: it was frozen.
        # (to liblinear's stopping tolerance: last-bit differences in the featurized rows move its solution in the
        # 5th digit; two epochs of training would move it by about the learning rate, 1e-3)
        np.testing.assert_allclose(table, expected, rtol=1e-4, atol=1e-4)
    # The deep heads did train on top of it.
    losses = run.metrics["history"]["loss"]
    assert losses[1] < losses[0]


def test_init_must_be_known_and_svm_options_positive():
    from linnet.errors import ConfigError
    from linnet.model import ModelConfig

    with pytest.raises(ConfigError, match=r"wide\.init"):
        ModelConfig.from_dict({"wide": {"init": "svm"}})
    with pytest.raises(ConfigError, match=r"svm_c"):
        ModelConfig.from_dict({"wide": {"init": "linear_svm", "svm_c": 0}})
    with pytest.raises(ConfigError, match=r"svm_max_work"):
        ModelConfig.from_dict({"wide": {"svm_max_work": -1}})
    with pytest.raises(ConfigError, match=r"svm_jobs"):
        ModelConfig.from_dict({"wide": {"svm_jobs": 0}})
    assert ModelConfig().wide.init == "auto"


def test_parallel_solves_are_the_sequential_svm(monkeypatch):
    """svm_jobs > 1 fits the same one-vs-rest problems side by side: the margins agree to the solver's tolerance;
    under PARALLEL_MIN_WORK the same problems are solved in this process, with the same margins."""
    import scipy.sparse as sparse

    from linnet.training import wide_init
    from linnet.training.wide_init import svm_table

    features = sparse.random(200, 50, density=0.2, random_state=3, format="csr")
    targets = np.random.default_rng(3).integers(0, 4, 200)
    sequential = svm_table(features, targets, num_classes=4, C=1.0, temperature=1.0, seed=0)
    in_process = svm_table(features, targets, num_classes=4, C=1.0, temperature=1.0, seed=0, n_jobs=2)
    monkeypatch.setattr(wide_init, "PARALLEL_MIN_WORK", 0)
    parallel = svm_table(features, targets, num_classes=4, C=1.0, temperature=1.0, seed=0, n_jobs=2)
    np.testing.assert_array_equal(in_process, parallel)
    assert np.abs(sequential).max() > 0.1
    np.testing.assert_allclose(parallel, sequential, atol=0.02 * np.abs(sequential).max())
    np.testing.assert_array_equal((features @ parallel).argmax(axis=1), (features @ sequential).argmax(axis=1))


def test_svm_work_and_the_auto_choice():
    from linnet.training.wide_init import resolve_init, svm_work

    labels = np.array([[0, 0, -1], [0, 1, -1], [1, 2, 5], [1, 2, -1], [-1, -1, -1]])
    # level 1: 4 labelled x 2 classes; level 2: 4 x 3; level 3: one class only, nothing to solve.
    assert svm_work(labels) == 4 * 2 + 4 * 3
    assert resolve_init("auto", labels, max_work=20)[0] == "linear_svm"
    choice, why = resolve_init("auto", labels, max_work=19)
    assert choice == "zeros" and "20" in why and "19" in why
    assert resolve_init("linear_svm", labels, max_work=0)[0] == "linear_svm"  # asked for: no budget applies
    assert resolve_init("zeros", labels, max_work=10**9)[0] == "zeros"


def test_auto_over_its_budget_leaves_the_wide_path_to_train(tiny_catalog_file, tiny_schema, tiny_taxonomy, tmp_path):
    import keras

    from linnet.training.trainer import train

    config = tiny_config(model={"wide": {"num_buckets": 1024, "svm_max_work": 0}}, training={"epochs": 1})
    run = train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
                progress=False)
    model = keras.saving.load_model(run.path / "model.keras")
    [(trained, svm)] = _wide_and_svm_tables(model, tiny_catalog_file, tiny_schema, tiny_taxonomy, [1],
                                            temperature=5.0)
    assert np.abs(trained).max() > 0  # moved away from zero by the optimizer
    assert np.abs(trained - svm).max() > 0.5  # and it is not the SVM's table


def test_a_frozen_svm_start_and_a_wide_loss_are_a_clear_error(tiny_catalog_file, tiny_schema, tiny_taxonomy,
                                                              tmp_path):
    from linnet.errors import ConfigError
    from linnet.training.trainer import train

    config = tiny_config(model={"wide": {"num_buckets": 1024, "init": "linear_svm"}},
                         training={"wide_loss_weight": 1.0, "epochs": 1})
    with pytest.raises(ConfigError, match=r"wide_loss_weight.*linear_svm"):
        train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
              progress=False)


def test_a_resumed_run_takes_the_svm_tables_from_its_backup(tiny_catalog_file, tiny_schema, tiny_taxonomy, tmp_path,
                                                            monkeypatch):
    from linnet.training import wide_init
    from linnet.training.trainer import train

    with pytest.raises(Killed):
        train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=SVM_CONFIG, taxonomy=tiny_taxonomy,
              progress=False, callbacks=[kill_after_epoch(1)])

    def no_second_solve(*args, **kwargs):
        raise AssertionError("the SVM was solved again on resume")

    monkeypatch.setattr(wide_init, "svm_table", no_second_solve)
    resumed = train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=SVM_CONFIG,
                    taxonomy=tiny_taxonomy, progress=False, resume=True)
    assert resumed.metrics["resumed_from_epoch"] == 1
    monkeypatch.undo()
    # The tables the resumed run ends with are the first run's SVM (restored from the backup, still frozen).
    levels = range(1, tiny_taxonomy.num_levels + 1)
    for table, expected in _wide_and_svm_tables(resumed.model, tiny_catalog_file, tiny_schema, tiny_taxonomy, levels,
                                                temperature=3.0, n_jobs=-1):
        np.testing.assert_allclose(table, expected, rtol=1e-4, atol=1e-4)
