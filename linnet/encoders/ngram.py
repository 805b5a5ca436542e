"""The default text encoder: fastText-style hashed word and character n-grams, embedded and pooled.

Two layers do the work so the model can reuse the same n-gram ids for a wide linear path:

- `HashedNgramFeaturizer`: ``{field: tf.string [B]}`` -> ``(ids int64 [B, L], weights float32 [B, L])``.
  Normalises the text (`linnet.encoders.text_normalization`), builds word uni/bi-grams and character n-grams inside words
  (``<word>`` padded, on Unicode code points, so Latin, Cyrillic and CJK all work) and hashes them into
  ``num_bins`` buckets, and lists each bucket once per row with a term-frequency weight (``1 + log(tf)``
  when ``sublinear_tf``); optionally times the bucket's inverse document frequency (``idf``, learned by
  `HashedNgramFeaturizer.adapt` from the training texts) and with the word and the character n-grams of a
  row L2-normalised separately (``normalize_per_kind``). Padding has id 0 and weight 0. No trainable
  weights. Words are hashed with ``tf.strings.to_hash_bucket_fast``; n-grams are polynomial hashes over word
  hashes or code points, salted per field and n-gram order (so title "red" and attributes "red" land in different buckets),
  computed with integer ops: building every n-gram as a string was half of a training step.
- `EmbeddingBag`: ``(ids, weights)`` -> ``[B, D]``: gathers only the real ids (so the table's gradient is
  a ``tf.IndexedSlices`` over the touched rows) and pools with ``sqrtn``, ``mean`` or ``sum``.

`HashedNgramEncoder` chains both and is what ``build_text_encoder("hashed_ngrams", text_fields)`` returns.

Why the defaults: ``num_bins=2**18`` (262,144 rows) x ``embedding_dim=64`` is a 64 MB float32 table (three
times that with Adam's two slots), large enough that collisions between the few hundred thousand distinct
n-grams of a catalogue's titles and attributes stay rare, small enough to train on a laptop. Updates touch
only the rows in the batch with `linnet.encoders.LazyAdamW` (see ``docs/encoders.md``), so step time does
not grow with the table. ``sqrtn`` pooling over these weights is the embedding analogue of an L2-normalised
sublinear TF vector, the feature map of a TF-IDF + linear SVM baseline. IDF and the separate word /
character norms are on by default because they bring the featurizer's output close to that baseline's
features, and the default wide path starts from a LinearSVC fitted on them (`linnet.training.wide_init`);
what each was measured to give is in docs/encoders.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from linnet.encoders.text_normalization import TextNormalizer
from linnet.errors import ConfigError
from linnet.progress import progress_bar

POOLINGS = ("sqrtn", "mean", "sum")
#: Layer name of the encoder's featurizer; the model finds the n-gram path by it (`linnet.model.names`).
FEATURIZER = "featurizer"
#: `HashedNgramFeaturizer.adapt` runs this many batches or fewer eagerly: tracing the featurizer costs more
#: than running a few batches op by op (50 products: about 6 s of CPU traced, 0.5 s eager).
EAGER_ADAPT_BATCHES = 4
# N-gram hashes are kept below this Mersenne prime, so products with the multipliers below fit in int64.
_HASH_PRIME = 2**31 - 1
_ROLLING_MULTIPLIER = 1_000_003
_MIX_MULTIPLIER = 2_654_435_761  # Knuth's multiplicative constant, spreads nearby hashes over the buckets


def _rolling_hashes(values: tf.Tensor, value_rows: tf.Tensor, order: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Polynomial hashes of every run of ``order`` consecutive values that lie in one row.

    Integer arithmetic on the flat values instead of ``tf.strings.ngrams`` + hashing: no n-gram string is
    ever built, which makes character n-grams several times cheaper.

    Args:
        values: ``int64 [N]`` in ``[0, _HASH_PRIME)`` (word hashes or code points), rows contiguous.
        value_rows: ``int64 [N]`` row of each value (non-decreasing).
        order: n-gram length.

    Returns:
        ``(rows, hashes)`` of the n-grams, ``int64 [M]`` each, hashes in ``[0, _HASH_PRIME)``.
    """
    count = tf.maximum(tf.size(values, out_type=tf.int64) - order + 1, 0)
    starts = tf.range(count)
    hashes = tf.zeros([count], tf.int64)
    for offset in range(order):
        hashes = (hashes * _ROLLING_MULTIPLIER + tf.gather(values, starts + offset)) % _HASH_PRIME
    inside_one_row = tf.equal(tf.gather(value_rows, starts), tf.gather(value_rows, starts + order - 1))
    return tf.boolean_mask(tf.gather(value_rows, starts), inside_one_row), tf.boolean_mask(hashes, inside_one_row)


def _mix(hashes: tf.Tensor, salt: int) -> tf.Tensor:
    return ((hashes + salt) % _HASH_PRIME * _MIX_MULTIPLIER) % _HASH_PRIME


def _check_range(name: str, value, minimum: int) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not minimum <= value[0] <= value[1]
    ):
        raise ConfigError(f"{name}: expected [low, high] integers with {minimum} <= low <= high, got {value!r}")
    return int(value[0]), int(value[1])


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return value


def check_text_fields(text_fields) -> list[str]:
    """Validate a list of text feature names (non-empty, unique strings)."""
    if isinstance(text_fields, str) or not isinstance(text_fields, Sequence) or not text_fields:
        raise ConfigError(f"text_fields: expected a non-empty list of feature names, got {text_fields!r}")
    fields = list(text_fields)
    if not all(isinstance(field, str) and field for field in fields) or len(set(fields)) != len(fields):
        raise ConfigError(f"text_fields: expected unique non-empty strings, got {fields!r}")
    return fields


def fields_in_order(inputs, text_fields: Sequence[str], layer_name: str) -> list:
    """``{field: [B]}`` (or a list / one tensor in ``text_fields`` order) -> list in ``text_fields`` order."""
    if isinstance(inputs, Mapping):
        missing = [field for field in text_fields if field not in inputs]
        if missing:
            raise ConfigError(
                f"{layer_name}: text field(s) {missing} missing from the inputs (got {sorted(inputs)})"
            )
        return [inputs[field] for field in text_fields]
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if len(inputs) != len(text_fields):
        raise ConfigError(f"{layer_name}: expected {len(text_fields)} text fields {list(text_fields)}, got {len(inputs)}")
    return list(inputs)


@keras.saving.register_keras_serializable(package="linnet")
class HashedNgramFeaturizer(keras.layers.Layer):
    """Text fields -> hashed n-gram bucket ids and term-frequency weights (no trainable weights).

    Args:
        text_fields: feature names of the text inputs, in order (``["title", "attributes"]``).
        num_bins: number of hash buckets (ids are in ``[0, num_bins)``). Default ``2**18``.
        word_ngram_range: ``[low, high]`` word n-gram orders (default uni- and bi-grams), or ``None``.
        char_ngram_range: ``[low, high]`` character n-gram orders inside ``<word>`` (default 3-5), or ``None``.
        field_prefixes: hash each field's n-grams in its own space (title "red" != attributes "red").
        sublinear_tf: weight ``1 + log(count)`` instead of ``count`` for a bucket repeated in a row.
        max_words_per_field: words kept per field (long descriptions are truncated); bounds step time.
        max_word_length: characters of a word used for its character n-grams (URLs, SKUs).
        normalization: `linnet.encoders.text_normalization.TextNormalizer` arguments (``unicode_form``, ``lowercase``,
            ``strip_punctuation``, ``split_cjk``, ``stop_words``); ``None`` uses its defaults.
        idf: multiply each bucket's weight by its inverse document frequency, held in a non-trainable
            ``idf`` weight of ``num_bins`` floats that `adapt` sets from the training texts
            (`linnet.training.trainer.train` does this before fitting). Until then it is all ones (no re-weighting).
            On by default (see the module docstring for what it measured).
        normalize_per_kind: L2-normalise each row's word n-grams and character n-grams separately, so the
            few words of a title weigh as much as its many character n-grams (without it, words are about a
            tenth of the row's norm). On by default.
        **kwargs: standard Keras layer arguments.

    Call:
        inputs: ``{field: tf.string [B]}`` (extra keys are ignored), or a list of ``[B]`` tensors in
            ``text_fields`` order.

    Returns:
        ``(ids, weights)``: ``int64 [B, L]`` and ``float32 [B, L]``; each row lists its distinct buckets,
        padded with id 0 and weight 0.

    Example:
        >>> import tensorflow as tf
        >>> featurizer = HashedNgramFeaturizer(["title"], num_bins=1000)
        >>> ids, weights = featurizer({"title": tf.constant(["red shirt", "shirt"])})
        >>> int(tf.reduce_sum(tf.cast(weights[1] > 0, tf.int32)))  # "shirt" + <sh shi ... <shirt>
        13
    """

    def __init__(
        self,
        text_fields: Sequence[str] = ("title",),
        num_bins: int = 2**18,
        word_ngram_range: Sequence[int] | None = (1, 2),
        char_ngram_range: Sequence[int] | None = (3, 5),
        field_prefixes: bool = True,
        sublinear_tf: bool = True,
        max_words_per_field: int = 256,
        max_word_length: int = 32,
        normalization: Mapping | None = None,
        idf: bool = True,
        normalize_per_kind: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.text_fields = check_text_fields(text_fields)
        self.num_bins = _check_positive_int("num_bins", num_bins)
        self.word_ngram_range = _check_range("word_ngram_range", word_ngram_range, 1)
        self.char_ngram_range = _check_range("char_ngram_range", char_ngram_range, 1)
        if self.word_ngram_range is None and self.char_ngram_range is None:
            raise ConfigError("word_ngram_range, char_ngram_range: at least one must be set")
        self.field_prefixes = bool(field_prefixes)
        self.sublinear_tf = bool(sublinear_tf)
        self.idf = bool(idf)
        self.normalize_per_kind = bool(normalize_per_kind)
        self.max_words_per_field = _check_positive_int("max_words_per_field", max_words_per_field)
        self.max_word_length = _check_positive_int("max_word_length", max_word_length)
        self.normalization = dict(normalization) if normalization else None
        try:
            self.normalizer = TextNormalizer(**(self.normalization or {}), name="normalizer")
        except TypeError as error:
            raise ConfigError(f"normalization: {error}") from None
        # String ops have no XLA kernels; raw Python/NumPy strings are welcome as inputs.
        self.supports_jit = False
        self._allow_non_tensor_positional_args = True

    def _salt(self, field: str, kind: str) -> int:
        """A stable per-(field, n-gram kind) constant, so each field and order hashes into its own space."""
        label = f"{field}|{kind}" if self.field_prefixes else kind
        return int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little") % _HASH_PRIME

    def _field_ngrams(self, texts: tf.Tensor, field: str) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Hashes (in ``[0, 2**31 - 1)``) of every n-gram of one field, the batch row and the kind of each

        (kind ``0``: word n-gram, ``1``: character n-gram)."""
        words = tf.strings.split(self.normalizer(texts))[:, : self.max_words_per_field]
        word_rows = words.value_rowids()
        rows, hashes, kinds = [], [], []
        if self.word_ngram_range is not None:
            word_hashes = tf.strings.to_hash_bucket_fast(words.flat_values, _HASH_PRIME)
            low, high = self.word_ngram_range
            for order in range(low, high + 1):
                gram_rows, gram_hashes = _rolling_hashes(word_hashes, word_rows, order)
                rows.append(gram_rows)
                hashes.append(_mix(gram_hashes, self._salt(field, f"w{order}")))
                kinds.append(tf.zeros_like(gram_rows))
        if self.char_ngram_range is not None:
            clipped = tf.strings.substr(words.flat_values, 0, self.max_word_length, unit="UTF8_CHAR")
            # "<" and ">" mark word boundaries, as in fastText.
            characters = tf.strings.unicode_decode(tf.strings.join(["<", clipped, ">"]), "UTF-8")
            character_words = characters.value_rowids()
            codepoints = tf.cast(characters.flat_values, tf.int64)
            low, high = self.char_ngram_range
            for order in range(low, high + 1):
                gram_words, gram_hashes = _rolling_hashes(codepoints, character_words, order)
                rows.append(tf.gather(word_rows, gram_words))
                hashes.append(_mix(gram_hashes, self._salt(field, f"c{order}")))
                kinds.append(tf.ones_like(gram_words))
        return tf.concat(rows, axis=0), tf.concat(hashes, axis=0), tf.concat(kinds, axis=0)

    def build(self, inputs_shape=None):
        if self.built:
            return
        if self.idf:
            # Starts at 1 (no re-weighting) until `adapt` has seen the training texts.
            self.idf_weights = self.add_weight(name="idf", shape=(self.num_bins,), initializer="ones",
                                               dtype="float32", trainable=False, autocast=False)
        self.built = True

    def adapt(self, data, batch_size: int = 1024, progress: bool = False) -> int:
        """Set the inverse document frequencies from training texts (when ``idf``); returns the documents seen.

        ``idf = log((1 + n) / (1 + df)) + 1`` per bucket (scikit-learn's smoothed IDF), where ``n`` is the
        number of products and ``df`` how many of them contain the bucket. Buckets never seen get the
        largest value, as an unseen term would in TF-IDF.

        Args:
            data: ``{field: array of strings}`` (the columns of the training split) or a ``tf.data.Dataset``
                of such dicts, batched.
            batch_size: rows per featurisation call when ``data`` is a dict of arrays.
            progress: show a progress bar.
        """
        if not self.idf:
            return 0
        self.build()
        if isinstance(data, tf.data.Dataset):
            batches = data
            total = None
        else:
            columns = {field: data[field] for field in self.text_fields if field in data}
            fields_in_order(columns, self.text_fields, self.name)  # a clear error for a missing field
            batches = tf.data.Dataset.from_tensor_slices(
                {field: tf.constant([str(value) for value in values], tf.string) for field, values in columns.items()}
            ).batch(batch_size)
            total = int(batches.cardinality())

        @tf.function(reduce_retracing=True)
        def distinct_buckets(batch):
            ids, weights = self._featurize(batch, idf=None)
            return tf.boolean_mask(ids, weights > 0), tf.shape(ids, out_type=tf.int64)[0]

        if total is not None and total <= EAGER_ADAPT_BATCHES:
            # Tracing the featurizer (thousands of ops) costs seconds; a few batches run faster op by op.
            distinct_buckets = distinct_buckets.python_function
        document_frequency = tf.zeros([self.num_bins], tf.int64)
        documents = 0
        iterator = batches
        if progress:
            iterator = progress_bar(batches, total=total, desc="n-gram document frequencies", unit="batch")
        for batch in iterator:
            present, count = distinct_buckets({field: batch[field] for field in self.text_fields})
            document_frequency += tf.math.bincount(present, minlength=self.num_bins, maxlength=self.num_bins,
                                                   dtype=tf.int64)
            documents += int(count)
        frequency = tf.cast(document_frequency, tf.float64)
        idf = tf.math.log((1.0 + documents) / (1.0 + frequency)) + 1.0
        self.idf_weights.assign(tf.cast(idf, tf.float32))
        return documents

    def call(self, inputs):
        return self._featurize(inputs, idf=self.idf_weights if self.idf else None)

    def _featurize(self, inputs, idf):
        fields = fields_in_order(inputs, self.text_fields, self.name)
        fields = [tf.reshape(tf.convert_to_tensor(field, dtype=tf.string), [-1]) for field in fields]
        pieces = [self._field_ngrams(texts, name) for texts, name in zip(fields, self.text_fields)]
        rows = tf.concat([piece[0] for piece in pieces], axis=0)
        buckets = tf.concat([piece[1] for piece in pieces], axis=0) % self.num_bins
        kinds = tf.concat([piece[2] for piece in pieces], axis=0)
        batch_size = tf.shape(fields[0], out_type=tf.int64)[0]
        # Count each (row, kind, bucket) once; kind is 0 for word n-grams, 1 for character n-grams.
        groups = rows * 2 + kinds if self.normalize_per_kind else rows
        unique_keys, _, counts = tf.unique_with_counts(groups * self.num_bins + buckets, out_idx=tf.int64)
        counts = tf.cast(counts, tf.float32)
        weights = 1.0 + tf.math.log(counts) if self.sublinear_tf else counts
        unique_buckets = unique_keys % self.num_bins
        if idf is not None:
            weights = weights * tf.gather(tf.cast(idf, tf.float32), unique_buckets)
        if self.normalize_per_kind:
            # L2-normalise the word block and the character block of each row separately (as a FeatureUnion
            # of two TF-IDF vectors does), then merge a bucket that both kinds hashed into.
            unique_groups = unique_keys // self.num_bins
            norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(weights), unique_groups, batch_size * 2))
            weights = weights / tf.gather(norms, unique_groups)
            unique_keys, merged = tf.unique((unique_groups // 2) * self.num_bins + unique_buckets, out_idx=tf.int64)
            weights = tf.math.unsorted_segment_sum(weights, merged, tf.size(unique_keys, out_type=tf.int64))
        # Order the pairs by row for from_value_rowids.
        order = tf.argsort(unique_keys)
        unique_keys = tf.gather(unique_keys, order)
        weights = tf.gather(weights, order)
        ids = tf.RaggedTensor.from_value_rowids(unique_keys % self.num_bins, unique_keys // self.num_bins, batch_size)
        return ids.to_tensor(default_value=0), ids.with_flat_values(weights).to_tensor(default_value=0.0)

    def compute_output_spec(self, inputs):
        first = fields_in_order(inputs, self.text_fields, self.name)[0]
        batch = first.shape[0] if first.shape else None
        return (
            keras.KerasTensor((batch, None), dtype="int64"),
            keras.KerasTensor((batch, None), dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            text_fields=list(self.text_fields),
            num_bins=self.num_bins,
            word_ngram_range=list(self.word_ngram_range) if self.word_ngram_range else None,
            char_ngram_range=list(self.char_ngram_range) if self.char_ngram_range else None,
            field_prefixes=self.field_prefixes,
            sublinear_tf=self.sublinear_tf,
            max_words_per_field=self.max_words_per_field,
            max_word_length=self.max_word_length,
            normalization=self.normalization,
            idf=self.idf,
            normalize_per_kind=self.normalize_per_kind,
        )
        return config


@keras.saving.register_keras_serializable(package="linnet")
class EmbeddingBag(keras.layers.Layer):
    """Weighted pooling of embedding rows: ``(ids [B, L], weights [B, L]) -> [B, output_dim]``.

    Only ids with a positive weight are gathered, so the gradient of ``embeddings`` is a
    ``tf.IndexedSlices`` over the rows the batch touched; train it with `linnet.encoders.LazyAdamW`
    (or ``keras.optimizers.SGD`` without momentum) to keep the update sparse. Ids are folded modulo
    ``input_dim``, so a smaller table can share a featurizer's ids. With ``output_dim`` equal to a
    number of classes it is a linear model over the n-grams (the "wide" path).

    The table is always float32 and is never cast as a whole (``autocast=False``): under mixed
    precision only the gathered rows are cast.

    Args:
        input_dim: number of rows (the featurizer's ``num_bins``, or fewer to fold).
        output_dim: vector size (or number of classes for a wide path).
        pooling: ``"sqrtn"`` (default; ``sum(w e) / sqrt(sum(w^2))``), ``"mean"`` or ``"sum"``.
        embeddings_initializer: Keras initializer (default uniform in ``±0.05``).
        embeddings_regularizer: optional Keras regularizer. A dense L2 penalty touches every row each
            step; prefer `LazyAdamW`'s weight decay, which decays only the rows a batch touches.
        **kwargs: standard Keras layer arguments.

    Example:
        >>> import tensorflow as tf
        >>> bag = EmbeddingBag(input_dim=10, output_dim=4, pooling="mean")
        >>> bag(tf.constant([[1, 2], [3, 0]], tf.int64), tf.constant([[1.0, 1.0], [1.0, 0.0]])).shape
        TensorShape([2, 4])
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        pooling: str = "sqrtn",
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = _check_positive_int("input_dim", input_dim)
        self.output_dim = _check_positive_int("output_dim", output_dim)
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)

    def build(self, ids_shape=None, weights_shape=None):
        if self.built:
            return
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            dtype="float32",
            autocast=False,
            trainable=True,
        )
        self.built = True

    def call(self, ids, weights):
        weights = tf.cast(weights, tf.float32)
        present = weights > 0
        rows = tf.where(present)[:, 0]
        flat_ids = tf.boolean_mask(tf.cast(ids, tf.int64), present) % self.input_dim
        flat_weights = tf.boolean_mask(weights, present)
        batch_size = tf.shape(ids, out_type=tf.int64)[0]
        # Gather each distinct row once and pool with a sparse [B, U] x dense [U, D] product: the
        # table's gradient then has unique indices (no per-occurrence rows to sum in the optimizer),
        # and sparse_dense_matmul fuses the weighting and the per-row sum on all cores.
        unique_ids, positions = tf.unique(flat_ids, out_idx=tf.int64)
        vectors = tf.gather(self.embeddings.value, unique_ids)
        bag = tf.SparseTensor(
            tf.stack([rows, positions], axis=1), flat_weights, tf.stack([batch_size, tf.size(unique_ids, out_type=tf.int64)])
        )
        pooled = tf.sparse.sparse_dense_matmul(bag, vectors)
        if self.pooling == "mean":
            pooled = tf.math.divide_no_nan(pooled, tf.math.unsorted_segment_sum(flat_weights, rows, batch_size)[:, None])
        elif self.pooling == "sqrtn":
            norm = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(flat_weights), rows, batch_size))
            pooled = tf.math.divide_no_nan(pooled, norm[:, None])
        return tf.cast(pooled, self.compute_dtype)

    def compute_output_spec(self, ids, weights):
        return keras.KerasTensor((ids.shape[0], self.output_dim), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            pooling=self.pooling,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=keras.regularizers.serialize(self.embeddings_regularizer)
            if self.embeddings_regularizer
            else None,
        )
        return config


@keras.saving.register_keras_serializable(package="linnet")
class HashedNgramEncoder(keras.layers.Layer):
    """Default text encoder: `HashedNgramFeaturizer` then `EmbeddingBag`; ``{field: [B]}`` -> ``float32 [B, D]``.

    The two parts are public attributes (``featurizer``, ``embedding_bag``) so a model can feed the
    featurizer's ids to a wide linear `EmbeddingBag` of its own.

    Args:
        text_fields: feature names of the text inputs, in order.
        num_bins: hash buckets (rows of the table). Default ``2**18``.
        embedding_dim: output size ``D``. Default 64.
        pooling: ``"sqrtn"`` (default), ``"mean"`` or ``"sum"``.
        word_ngram_range, char_ngram_range, field_prefixes, sublinear_tf, max_words_per_field,
            max_word_length, normalization, idf, normalize_per_kind: see `HashedNgramFeaturizer`.
        embeddings_initializer: initializer of the table (default uniform in ``±0.05``).
        **kwargs: standard Keras layer arguments (``trainable=False`` freezes the table).

    Example:
        >>> import tensorflow as tf
        >>> encoder = HashedNgramEncoder(["title", "attributes"], num_bins=4096, embedding_dim=16)
        >>> encoder({"title": tf.constant(["Red cotton T-shirt"]), "attributes": tf.constant(["color: red"])}).shape
        TensorShape([1, 16])
    """

    def __init__(
        self,
        text_fields: Sequence[str] = ("title",),
        num_bins: int = 2**18,
        embedding_dim: int = 64,
        pooling: str = "sqrtn",
        word_ngram_range: Sequence[int] | None = (1, 2),
        char_ngram_range: Sequence[int] | None = (3, 5),
        field_prefixes: bool = True,
        sublinear_tf: bool = True,
        max_words_per_field: int = 256,
        max_word_length: int = 32,
        normalization: Mapping | None = None,
        idf: bool = True,
        normalize_per_kind: bool = True,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.featurizer = HashedNgramFeaturizer(
            text_fields=text_fields,
            num_bins=num_bins,
            word_ngram_range=word_ngram_range,
            char_ngram_range=char_ngram_range,
            field_prefixes=field_prefixes,
            sublinear_tf=sublinear_tf,
            max_words_per_field=max_words_per_field,
            max_word_length=max_word_length,
            normalization=normalization,
            idf=idf,
            normalize_per_kind=normalize_per_kind,
            name=FEATURIZER,
        )
        self.embedding_bag = EmbeddingBag(
            num_bins, embedding_dim, pooling=pooling, embeddings_initializer=embeddings_initializer,
            name="embedding_bag",
        )
        # The model builder calls these two layers directly, so a frozen encoder must freeze them too
        # (they are created after ``trainable=False`` reached this layer).
        self.embedding_bag.trainable = self.trainable
        self.text_fields = self.featurizer.text_fields
        self.num_bins = num_bins
        self.embedding_dim = embedding_dim
        self.pooling = pooling
        self.embeddings_initializer = embeddings_initializer
        self.supports_jit = False
        self._allow_non_tensor_positional_args = True

    @property
    def output_dim(self) -> int:
        return self.embedding_dim

    def build(self, inputs_shape=None):
        self.featurizer.build()
        self.embedding_bag.build()
        self.built = True

    def call(self, inputs):
        ids, weights = self.featurizer(inputs)
        return self.embedding_bag(ids, weights)

    def compute_output_spec(self, inputs):
        first = fields_in_order(inputs, self.text_fields, self.name)[0]
        return keras.KerasTensor((first.shape[0] if first.shape else None, self.embedding_dim), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        featurizer_config = self.featurizer.get_config()
        for key in ("name", "trainable", "dtype"):
            featurizer_config.pop(key, None)
        config.update(featurizer_config)
        config.update(
            embedding_dim=self.embedding_dim,
            pooling=self.pooling,
            embeddings_initializer=keras.initializers.serialize(keras.initializers.get(self.embeddings_initializer)),
        )
        return config


def idf_featurizers(model) -> list[HashedNgramFeaturizer]:
    """The `HashedNgramFeaturizer` layers of ``model`` (nested ones too) that weight by IDF."""
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, HashedNgramFeaturizer) and layer.idf:
            found.setdefault(id(layer), layer)
    return list(found.values())


def adapt_featurizers(model, texts: Mapping, progress: bool = False) -> int:
    """Learn the IDF of every IDF-weighting n-gram featurizer in ``model`` from ``texts`` (the training split).

    Args:
        model: a built Keras model.
        texts: ``{field: array of strings}`` holding at least each featurizer's ``text_fields``.
        progress: progress bar over the texts.

    Returns:
        The number of documents counted (0 when no featurizer weights by IDF).
    """
    documents = 0
    for featurizer in idf_featurizers(model):
        documents = featurizer.adapt(texts, progress=progress)
    return documents


def copy_featurizer_weights(source, target) -> None:
    """Give ``target``'s IDF featurizers the IDF of ``source``'s featurizer of the same name (by layer name)."""
    by_name = {layer.name: layer for layer in idf_featurizers(source)}
    for layer in idf_featurizers(target):
        origin = by_name.get(layer.name)
        if origin is not None and origin is not layer:
            layer.idf_weights.assign(origin.idf_weights.value)


def build_text_encoder(text_fields: Sequence[str], **options) -> HashedNgramEncoder:
    """Registry factory of ``"hashed_ngrams"``: a `HashedNgramEncoder` over ``text_fields``.

    Raises:
        ConfigError: an option that `HashedNgramEncoder` does not take, or a bad value (named).
    """
    try:
        return HashedNgramEncoder(text_fields=text_fields, **options)
    except (TypeError, ValueError) as error:  # Keras rejects unknown keyword arguments with either
        raise ConfigError(f"text_encoder 'hashed_ngrams': {error}") from None
