"""Catalog data: schema, readers, label mapping, splits, class weights, images and tf.data pipelines.

Importing this package does not import TensorFlow; `make_dataset`, `decode_image`, the TFRecord and TFDS
helpers import it when called.

Example:
    >>> from linnet.data import CatalogSchema, prepare_catalog, make_dataset
    >>> schema = CatalogSchema(text_columns=["title"], category_column="category")
    >>> catalog = prepare_catalog("catalog.csv", schema)  # doctest: +SKIP
    >>> dataset = make_dataset(catalog.subset("train"), batch_size=32, shuffle=True)  # doctest: +SKIP
"""

from __future__ import annotations

from linnet.data.attributes import parse_pairs, render_attributes
from linnet.data.readers import BadRow, CatalogReader, read_records
from linnet.data.schema import ATTRIBUTES_FIELD, CatalogSchema
from linnet.data.split import SPLIT_NAMES, assign_splits
from linnet.data.weights import class_weights, sample_weights
from linnet.lazy_exports import lazy_exports

_LAZY = {
    "prepare_catalog": "linnet.data.prepare",
    "prepare_catalog_chunks": "linnet.data.prepare",
    "PreparedCatalog": "linnet.data.prepare",
    "CatalogReport": "linnet.data.prepare",
    "make_dataset": "linnet.data.pipeline",
    "decode_image": "linnet.data.images",
    "resolve_image_source": "linnet.data.images",
    "AugmentConfig": "linnet.data.augment",
    "write_tfrecords": "linnet.data.tfrecord",
    "read_tfrecords": "linnet.data.tfrecord",
    "inspect_catalog": "linnet.data.inspect",
    "fetch_images": "linnet.data.fetch",
    "build_tfds": "linnet.data.tfds_builder",
}

__all__ = [
    "ATTRIBUTES_FIELD",
    "SPLIT_NAMES",
    "AugmentConfig",
    "BadRow",
    "CatalogReader",
    "CatalogReport",
    "CatalogSchema",
    "PreparedCatalog",
    "assign_splits",
    "build_tfds",
    "class_weights",
    "decode_image",
    "fetch_images",
    "inspect_catalog",
    "make_dataset",
    "parse_pairs",
    "prepare_catalog",
    "prepare_catalog_chunks",
    "read_records",
    "read_tfrecords",
    "render_attributes",
    "resolve_image_source",
    "sample_weights",
    "write_tfrecords",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
