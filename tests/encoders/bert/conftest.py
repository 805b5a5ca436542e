"""A tiny BERT (2 layers, width 32) built once per session, written as a keras-hub preset and as a
Hugging Face directory, so the loaders are tested on real files without downloading anything."""

from __future__ import annotations

import json

import numpy as np
import pytest

VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "-", "'",
    "red", "blue", "cotton", "wool", "shirt", "t", "tee", "men", "women", "for", "with",
    "steel", "kitchen", "knife", "set", "block", "wooden", "dress", "summer", "long", "sleeve",
    "##s", "##ed", "##ing", "boots", "leather", "ankle", "size", "mug", "coffee", "ceramic",
]
TEXTS = [
    "Red cotton shirt for men",
    "Blue wool sleeve, long",
    "Steel kitchen knife set with wooden block",
    "Women's leather ankle boots",
    "mug",
]


def tiny_backbone():
    import keras
    import keras_hub

    keras.utils.set_random_seed(7)
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=32, dropout=0.0,
    )


def tiny_tokenizer():
    import keras_hub

    return keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)


def _hugging_face_tensors(backbone) -> dict[str, np.ndarray]:
    """The backbone's weights under BERT's Hugging Face names (the inverse of keras-hub's converter)."""

    def value(variable):
        return np.asarray(variable.numpy(), dtype=np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": value(backbone.get_layer("token_embedding").embeddings),
        "embeddings.position_embeddings.weight": value(backbone.get_layer("position_embedding").position_embeddings),
        "embeddings.token_type_embeddings.weight": value(backbone.get_layer("segment_embedding").embeddings),
        "embeddings.LayerNorm.weight": value(backbone.get_layer("embeddings_layer_norm").gamma),
        "embeddings.LayerNorm.bias": value(backbone.get_layer("embeddings_layer_norm").beta),
        "pooler.dense.weight": value(backbone.get_layer("pooled_dense").kernel).T,
        "pooler.dense.bias": value(backbone.get_layer("pooled_dense").bias),
    }
    for index in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{index}")
        attention = block._self_attention_layer
        prefix = f"encoder.layer.{index}."
        for name in ("query", "key", "value"):
            dense = getattr(attention, f"{name}_dense")
            kernel = value(dense.kernel)  # [hidden, heads, head_dim]
            tensors[f"{prefix}attention.self.{name}.weight"] = kernel.reshape(kernel.shape[0], -1).T
            tensors[f"{prefix}attention.self.{name}.bias"] = value(dense.bias).reshape(-1)
        kernel = value(attention.output_dense.kernel)  # [heads, head_dim, hidden]
        tensors[f"{prefix}attention.output.dense.weight"] = kernel.reshape(-1, kernel.shape[-1]).T
        tensors[f"{prefix}attention.output.dense.bias"] = value(attention.output_dense.bias)
        tensors[f"{prefix}attention.output.LayerNorm.weight"] = value(block._self_attention_layer_norm.gamma)
        tensors[f"{prefix}attention.output.LayerNorm.bias"] = value(block._self_attention_layer_norm.beta)
        tensors[f"{prefix}intermediate.dense.weight"] = value(block._feedforward_intermediate_dense.kernel).T
        tensors[f"{prefix}intermediate.dense.bias"] = value(block._feedforward_intermediate_dense.bias)
        tensors[f"{prefix}output.dense.weight"] = value(block._feedforward_output_dense.kernel).T
        tensors[f"{prefix}output.dense.bias"] = value(block._feedforward_output_dense.bias)
        tensors[f"{prefix}output.LayerNorm.weight"] = value(block._feedforward_layer_norm.gamma)
        tensors[f"{prefix}output.LayerNorm.bias"] = value(block._feedforward_layer_norm.beta)
    return {f"bert.{key}": np.ascontiguousarray(tensor) for key, tensor in tensors.items()}


def write_hugging_face_dir(backbone, directory, pooling: str | None = None, normalize: bool | None = None):
    """A Hugging Face BERT directory as ``transformers`` writes it (optionally sentence-transformers files)."""
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(VOCABULARY),
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 32, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    }
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}))
    (directory / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    save_file(_hugging_face_tensors(backbone), str(directory / "model.safetensors"))
    if pooling is not None:
        (directory / "1_Pooling").mkdir()
        (directory / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": pooling == "max",
        }))
    if normalize is not None:
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (directory / "modules.json").write_text(json.dumps(modules))
        (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    return directory


@pytest.fixture(scope="session")
def tiny_encoder():
    """A mean-pooling `BertTextEncoder` over a freshly built tiny backbone."""
    from linnet.encoders.bert import BertTextEncoder

    return BertTextEncoder(tiny_backbone(), tiny_tokenizer(), text_fields=["title"], sequence_length=32)


@pytest.fixture(scope="session")
def tiny_vectors(tiny_encoder):
    import tensorflow as tf

    return tiny_encoder({"title": tf.constant(TEXTS)}).numpy()


@pytest.fixture(scope="session")
def hugging_face_dir(tiny_encoder, tmp_path_factory):
    return write_hugging_face_dir(tiny_encoder.backbone, tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture(scope="session")
def saved_preset(tiny_encoder, tmp_path_factory):
    return tiny_encoder.save_preset(str(tmp_path_factory.mktemp("preset") / "tiny-bert"))
