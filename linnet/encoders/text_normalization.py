"""Text normalisation as TensorFlow ops, so training and serving clean text identically.

The normaliser runs *inside* the model (it is the first layer of every text encoder), so a SavedModel
that receives raw strings from TF Serving applies exactly the same cleaning as training did. Nothing
here loops over rows in Python.

Steps, in order, each switchable:

1. Unicode normalisation (``NFKC`` by default, via ``tensorflow_text.normalize_utf8``): full-width
   letters, ligatures (``ﬁ``), superscripts and compatibility forms become their plain equivalents.
2. Lower-casing (Unicode-aware, ``tf.strings.lower(..., encoding="utf-8")``).
3. Punctuation to spaces (``\\p{P}`` and ``\\p{S}`` except a few that carry meaning in product text,
   such as ``%``, ``+``, ``&``, ``#``, ``/``, ``.`` between digits is kept by not touching ``.``
   inside numbers).
4. Whitespace folding: any run of Unicode white space becomes one ASCII space; leading and trailing
   space is stripped.
5. CJK characters (Han, Hiragana, Katakana) become words of their own: these scripts are written
   without spaces, so word n-grams over single characters are the character uni/bi-grams that
   CJK search engines index (Hangul is spaced by words and left alone).
6. Optional stop-word removal for the given languages (built-in short lists, or your own words).

Example:
    >>> import tensorflow as tf
    >>> from linnet.encoders.text_normalization import TextNormalizer
    >>> normalizer = TextNormalizer(stop_words=["en"])
    >>> normalizer(tf.constant(["  The ＢＩＧ  Red\\tT-Shirt, for men "])).numpy()
    array([b'big red t shirt men'], dtype=object)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import tensorflow as tf

from linnet.errors import ConfigError

UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")

# Short, conservative lists: function words only, never words that can name a product
# ("top", "back", "case" are kept on purpose). Users pass their own list for anything more.
BUILTIN_STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
        "its", "of", "on", "or", "that", "the", "this", "to", "with", "without",
    ),
    "de": (
        "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines",
        "und", "oder", "mit", "für", "von", "zu", "zum", "zur", "im", "in", "ist", "auf", "aus",
    ),
    "fr": (
        "le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "et", "ou", "pour", "avec",
        "sans", "en", "à", "au", "aux", "sur", "par", "est",
    ),
    "es": (
        "el", "la", "los", "las", "un", "una", "unos", "unas", "de", "del", "y", "o", "para", "con",
        "sin", "en", "a", "al", "por", "es",
    ),
    "it": (
        "il", "lo", "la", "i", "gli", "le", "un", "una", "uno", "di", "del", "della", "e", "o",
        "per", "con", "senza", "in", "a", "al", "da", "è",
    ),
    "ru": (
        "и", "в", "во", "на", "с", "со", "для", "из", "от", "по", "к", "а", "или", "о", "об", "у",
        "за", "без",
    ),
}

# Scripts written without spaces between words.
_CJK_CHARACTER = r"([\p{Han}\p{Hiragana}\p{Katakana}])"


def _punctuation_regex() -> str:
    # RE2 has no character-class subtraction; spell the exclusion as a negated class instead.
    return r"[^\P{P}%&#/.]|[^\P{S}+]"


def resolve_stop_words(stop_words: Sequence[str] | None) -> list[str]:
    """Expand language codes (``"en"``) into the built-in lists; other entries are literal words.

    Args:
        stop_words: language codes from ``BUILTIN_STOP_WORDS`` and/or words, or ``None``.

    Returns:
        A sorted list of unique lower-case words.

    Raises:
        ConfigError: an entry looks like a language code (two letters) that has no built-in list.
    """
    words: set[str] = set()
    for entry in stop_words or ():
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"stop_words: entries must be non-empty strings, got {entry!r}")
        if entry in BUILTIN_STOP_WORDS:
            words.update(BUILTIN_STOP_WORDS[entry])
        else:
            words.add(entry.strip().lower())
    return sorted(words)


def normalize_text(
    texts: tf.Tensor,
    *,
    unicode_form: str | None = "NFKC",
    lowercase: bool = True,
    strip_punctuation: bool = True,
    split_cjk: bool = True,
    stop_words: Iterable[str] | None = None,
) -> tf.Tensor:
    """Normalise a string tensor of any shape with TF ops (see the module docstring for the steps).

    Args:
        texts: ``tf.string`` tensor.
        unicode_form: one of ``NFC``, ``NFKC``, ``NFD``, ``NFKD`` or ``None`` to skip.
        lowercase: Unicode-aware lower-casing.
        strip_punctuation: turn punctuation and symbols (except ``% + & # / .``) into spaces.
        split_cjk: put spaces around each Han, Hiragana and Katakana character.
        stop_words: already-resolved words to drop (see `resolve_stop_words`), or ``None``.

    Returns:
        A ``tf.string`` tensor of the same shape.

    Example:
        >>> import tensorflow as tf
        >>> normalize_text(tf.constant(["ＡＢＣ\\u00a0 Déjà-vu"])).numpy()
        array([b'abc d\\xc3\\xa9j\\xc3\\xa0 vu'], dtype=object)
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if unicode_form is not None:
        import tensorflow_text as tf_text  # lazy: loaded only to normalise Unicode; registers the ICU ops

        texts = tf_text.normalize_utf8(texts, unicode_form)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_punctuation:
        texts = tf.strings.regex_replace(texts, _punctuation_regex(), " ")
        # A dot is kept only between digits ("2.5"), elsewhere it separates words.
        texts = tf.strings.regex_replace(texts, r"(^|[^0-9])\.|\.([^0-9]|$)", r"\1 \2")
    if split_cjk:
        texts = tf.strings.regex_replace(texts, _CJK_CHARACTER, r" \1 ")
    texts = tf.strings.regex_replace(texts, r"[\s\p{Z}]+", " ")
    texts = tf.strings.strip(texts)
    stop_words = list(stop_words or ())
    if stop_words:
        shape = tf.shape(texts)
        tokens = tf.strings.split(tf.reshape(texts, [-1]))
        stop_table = tf.constant(stop_words, dtype=tf.string)
        is_stop = tf.reduce_any(
            tf.equal(tf.expand_dims(tokens.flat_values, -1), tf.expand_dims(stop_table, 0)), axis=-1
        )
        kept = tf.ragged.boolean_mask(tokens, tokens.with_flat_values(tf.logical_not(is_stop)))
        texts = tf.reshape(tf.strings.reduce_join(kept, axis=-1, separator=" "), shape)
    return texts


@keras.saving.register_keras_serializable(package="linnet")
class TextNormalizer(keras.layers.Layer):
    """Keras layer wrapping `normalize_text`; stateless, serialisable, string in, string out.

    Args:
        unicode_form: ``"NFKC"`` (default), ``"NFC"``, ``"NFD"``, ``"NFKD"`` or ``None``.
        lowercase: lower-case (Unicode-aware). Default ``True``.
        strip_punctuation: punctuation and symbols to spaces. Default ``True``.
        split_cjk: each Han, Hiragana and Katakana character becomes a word. Default ``True``.
        stop_words: language codes (``"en"``, ``"de"``, ``"fr"``, ``"es"``, ``"it"``, ``"ru"``)
            and/or literal words to remove; ``None`` (default) removes nothing.
        **kwargs: standard Keras layer arguments.

    Example:
        >>> import tensorflow as tf
        >>> TextNormalizer(lowercase=False)(tf.constant(["Hello,   World"])).numpy()
        array([b'Hello World'], dtype=object)
    """

    def __init__(
        self,
        unicode_form: str | None = "NFKC",
        lowercase: bool = True,
        strip_punctuation: bool = True,
        split_cjk: bool = True,
        stop_words: Sequence[str] | None = None,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if unicode_form is not None and unicode_form not in UNICODE_FORMS:
            raise ConfigError(f"unicode_form: expected one of {UNICODE_FORMS} or None, got {unicode_form!r}")
        self.unicode_form = unicode_form
        self.lowercase = bool(lowercase)
        self.strip_punctuation = bool(strip_punctuation)
        self.split_cjk = bool(split_cjk)
        self.stop_words = list(stop_words) if stop_words else None
        self._resolved_stop_words = resolve_stop_words(self.stop_words)

    def call(self, texts):
        return normalize_text(
            texts,
            unicode_form=self.unicode_form,
            lowercase=self.lowercase,
            strip_punctuation=self.strip_punctuation,
            split_cjk=self.split_cjk,
            stop_words=self._resolved_stop_words,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, texts):
        return keras.KerasTensor(texts.shape, dtype="string")

    def get_config(self):
        config = super().get_config()
        config.update(
            unicode_form=self.unicode_form,
            lowercase=self.lowercase,
            strip_punctuation=self.strip_punctuation,
            split_cjk=self.split_cjk,
            stop_words=self.stop_words,
        )
        return config
