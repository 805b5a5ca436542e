"""Text normalisation in TF ops (`linnet.encoders.text_normalization`)."""

from __future__ import annotations

import pytest

from linnet.errors import ConfigError


def _normalize(texts, **options):
    import tensorflow as tf

    from linnet.encoders.text_normalization import normalize_text

    return [value.decode("utf-8") for value in normalize_text(tf.constant(texts), **options).numpy()]


def test_nfkc_lowercase_punctuation_and_whitespace():
    assert _normalize(["  The ＢＩＧ\u00a0 Red\tT-Shirt,  2.5kg 50%  ﬁle. "]) == ["the big red t shirt 2.5kg 50% file"]


def test_cyrillic_is_lowercased():
    assert _normalize(["Красная  ФУТБОЛКА!"]) == ["красная футболка"]


def test_cjk_characters_become_words_and_can_be_kept_whole():
    assert _normalize(["男士T恤 メンズ"]) == ["男 士 t 恤 メ ン ズ"]
    assert _normalize(["男士T恤"], split_cjk=False) == ["男士t恤"]


def test_stop_words_by_language_and_literal():
    from linnet.encoders.text_normalization import resolve_stop_words

    words = resolve_stop_words(["en", "Extra"])
    assert "the" in words and "extra" in words
    assert _normalize(["The shirt for the men extra"], stop_words=words) == ["shirt men"]


def test_normalizer_layer_round_trips_config(tf):
    from linnet.encoders.text_normalization import TextNormalizer

    layer = TextNormalizer(stop_words=["de"], split_cjk=False)
    clone = TextNormalizer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone(tf.constant(["Der  Hut"])).numpy().tolist() == [b"hut"]


def test_bad_unicode_form_is_a_config_error():
    from linnet.encoders.text_normalization import TextNormalizer

    with pytest.raises(ConfigError, match="unicode_form"):
        TextNormalizer(unicode_form="NFX")
