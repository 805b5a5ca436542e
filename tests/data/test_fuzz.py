"""Fuzzing (issue 23): the catalog readers, the taxonomy parsers and the image decode on arbitrary and mutated input.

The only exceptions allowed out are `linnet.errors.LinnetError`s (a message naming the file); the image
decode may not raise at all. CI runs a bounded number of examples; a longer run sets
``LINNET_FUZZ_EXAMPLES`` (docs/security.md records one):

    LINNET_FUZZ_EXAMPLES=5000 python -m pytest -q -n 0 tests/data/test_fuzz.py
"""

from __future__ import annotations

import gzip
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linnet.errors import LinnetError

from .conftest import encode_image

EXAMPLES = int(os.environ.get("LINNET_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# bytes that look like the start of a catalog / taxonomy more often than uniform noise would
SEEDS = [b"id,title,category\n", b"id\ttitle\tcategory\n", b'{"id": 1, "title": "x"}\n', b"1 - Animals\n",
         b"# Google_Product_Taxonomy_Version: 2021-09-21\n", b"gid://shopify/TaxonomyCategory/aa : Apparel\n",
         b"id,parent_id,name\n", b'{"format": "linnet-taxonomy", "nodes": []}', b"A > B\n", b"PAR1", b""]
noise = st.binary(max_size=300)
catalog_bytes = st.one_of(noise, st.tuples(st.sampled_from(SEEDS), noise, st.sampled_from(SEEDS), noise).map(b"".join))


def _read_all(path, **options):
    from linnet.data.readers import CatalogReader

    reader = CatalogReader(path, **options)
    return sum(len(chunk.records) + len(chunk.bad_rows) for chunk in reader)


@FUZZ
@given(data=catalog_bytes, suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz", ".jsonl.gz"]),
       gzip_it=st.booleans())
def test_readers_raise_nothing_but_catalog_errors(tmp_path_factory, data, suffix, gzip_it):
    path = tmp_path_factory.mktemp("fuzz") / f"catalog{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") and gzip_it else data)
    try:
        _read_all(path, chunk_rows=3)
    except LinnetError:
        pass


@FUZZ
@given(data=catalog_bytes)
def test_prepare_catalog_raises_nothing_but_catalog_errors(tmp_path_factory, data):
    from linnet.data import CatalogSchema, prepare_catalog

    folder = tmp_path_factory.mktemp("prepare")
    (folder / "c.csv").write_bytes(data)
    schema = CatalogSchema(text_columns=["title"], category_column="category")
    try:
        prepare_catalog(folder / "c.csv", schema, errors_path=folder / "bad.jsonl", unknown_labels="skip")
    except LinnetError:
        pass


@FUZZ
@given(data=catalog_bytes, name=st.sampled_from(["taxonomy-with-ids.en-US.txt", "taxonomy.en-US.txt", "categories.txt",
                                                 "tree.json", "tree.csv", "tree.tsv", "paths.txt", "tree.jsonl"]),
       format=st.sampled_from([None, "google", "shopify", "json", "table", "paths"]))
def test_taxonomy_parsers_raise_nothing_but_taxonomy_errors(tmp_path_factory, data, name, format):
    from linnet.taxonomy import load_taxonomy

    path = tmp_path_factory.mktemp("taxonomy") / name
    path.write_bytes(data)
    try:
        tree = load_taxonomy(path, format=format)
    except LinnetError:
        return
    tree.to_json()  # a tree that loads is whole: it serialises and encodes its own leaves
    tree.encode(tree.leaves())


@pytest.fixture(scope="module")
def decode():
    import tensorflow as tf

    from linnet.data.images import decode_image

    return tf.function(lambda data: decode_image(data, 16, max_pixels=200_000),
                       input_signature=[tf.TensorSpec([None], tf.string)])


VALID = [encode_image(fmt, size=12) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]


@st.composite
def mutated_images(draw):
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position:position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@FUZZ
@given(blobs=st.lists(st.one_of(mutated_images(), st.binary(max_size=64)), min_size=1, max_size=8))
def test_image_decode_never_raises(decode, blobs):
    import tensorflow as tf

    images, present = decode(tf.constant(blobs))
    assert images.shape == (len(blobs), 16, 16, 3)
    assert set(present.numpy().tolist()) <= {0.0, 1.0}


@FUZZ
@given(cell=st.one_of(st.text(max_size=40), st.binary(max_size=64), mutated_images(), st.none(),
                      st.sampled_from(["~", "~/", "../", "/", "http://x/", "https://x/"]).flatmap(
                          lambda prefix: st.text(max_size=20).map(lambda text: prefix + text)),
                      st.text(max_size=40).map(lambda text: "data:image/png;base64," + text)))
def test_image_sources_and_the_fetch_check_raise_nothing(tmp_path_factory, cell):
    from linnet.data.fetch import _check_image, _Outcome
    from linnet.data.images import resolve_image_source
    from linnet.data.rows import read_image

    root = tmp_path_factory.getbasetemp()
    _, kind = resolve_image_source(cell, root)
    assert kind in ("file", "bytes", "none", "missing_file", "url_not_fetched", "outside_root", "not_image",
                    "too_large")
    read_image(cell, root)
    if isinstance(cell, bytes):
        try:
            _check_image(cell, 200_000)
        except _Outcome:
            pass
