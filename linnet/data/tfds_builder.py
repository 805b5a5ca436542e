"""A TensorFlow Datasets builder for prepared catalogs: ``tfds.load("linnet_catalog", data_dir=...)`` offline.

Build once from a `PreparedCatalog`; afterwards the dataset loads from ``data_dir`` alone (no catalog,
images or network), with ``tfds.load`` or ``tfds.builder_from_directory``. Each example holds the id, the
text fields, the encoded image bytes (decode with `linnet.data.images.decode_image`), one int64 label
per level (``-1`` = no label) and the value. The schema and taxonomy travel in the dataset's metadata.

Example:
    >>> builder = LinnetCatalog(data_dir="tfds/", catalog=prepare_catalog("catalog.csv", schema))  # doctest: +SKIP
    >>> builder.download_and_prepare()  # doctest: +SKIP
    >>> train = tfds.load("linnet_catalog", data_dir="tfds/", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import typing

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from linnet.data.split import SPLIT_NAMES
from linnet.data.tfrecord import _image_bytes
from linnet.errors import CatalogError


class LinnetCatalog(tfds.core.GeneratorBasedBuilder):
    """Prepared LinNét catalog (text fields, image bytes, per-level labels) as a TFDS dataset.

    Args:
        catalog: The `PreparedCatalog` to build from; not needed to load an already built dataset.
        **kwargs: ``data_dir``, ``version`` ... as for any TFDS builder.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: typing.ClassVar[dict] = {"1.0.0": "Prepared catalog: id, text fields, image bytes, per-level labels, value."}
    # No checksums or metadata files ship with this builder; TFDS's source-path lookup would also need
    # the optional importlib_resources package for an editable install.
    code_path = None

    def __init__(self, *, catalog=None, **kwargs):
        self._catalog = catalog
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        catalog = self._catalog
        if catalog is None:
            # Loading a built dataset: the features were saved next to the data.
            try:
                features = tfds.features.FeatureConnector.from_config(self.data_dir)
            except (OSError, FileNotFoundError, ValueError) as error:
                raise CatalogError(f"{self.data_dir}: no built linnet_catalog here; build it with "
                                   f"LinnetCatalog(data_dir=..., catalog=prepared).download_and_prepare() ({error})") from None
            return tfds.core.DatasetInfo(builder=self, features=features, metadata=tfds.core.MetadataDict())
        features = {"id": tfds.features.Text(), "image_bytes": tfds.features.Tensor(shape=(), dtype=np.str_),
                    "value": tfds.features.Tensor(shape=(), dtype=np.float32)}
        features.update({name: tfds.features.Text() for name in catalog.schema.feature_text_fields})
        features.update({f"level_{level}": tfds.features.Tensor(shape=(), dtype=np.int64)
                         for level in range(1, catalog.num_levels + 1)})
        metadata = tfds.core.MetadataDict(
            schema=catalog.schema.to_dict(), text_fields=list(catalog.schema.feature_text_fields),
            num_levels=catalog.num_levels,
            taxonomy=json.dumps(catalog.taxonomy.to_json()) if catalog.taxonomy is not None else None,
        )
        return tfds.core.DatasetInfo(builder=self, description="A LinNét prepared product catalog.",
                                     features=tfds.features.FeaturesDict(features), metadata=metadata)

    def _split_generators(self, dl_manager):
        if self._catalog is None:
            raise CatalogError("pass catalog= to build the dataset")
        return {split: self._generate_examples(split) for split in SPLIT_NAMES if (self._catalog.split == split).any()}

    def _generate_examples(self, split):
        catalog = self._catalog
        fields = catalog.schema.feature_text_fields
        for row in np.flatnonzero(catalog.split == split):
            example = {"id": str(catalog.ids[row]),
                       "image_bytes": _image_bytes(catalog.image_sources[row]) if catalog.image_sources is not None else b"",
                       "value": float(catalog.values[row]) if catalog.values is not None else float("nan")}
            example.update({name: str(catalog.texts[name][row]) for name in fields})
            example.update({f"level_{level}": int(catalog.labels[row, level - 1])
                            for level in range(1, catalog.num_levels + 1)})
            yield str(catalog.ids[row]), example


def build_tfds(catalog, data_dir, *, progress: bool = False) -> LinnetCatalog:
    """Builds the ``linnet_catalog`` TFDS dataset of ``catalog`` in ``data_dir`` and returns the builder."""
    builder = LinnetCatalog(data_dir=str(data_dir), catalog=catalog)
    config = tfds.download.DownloadConfig(verify_ssl=False)
    tfds.display_progress_bar(progress)
    builder.download_and_prepare(download_config=config)
    return builder


__all__ = ["LinnetCatalog", "build_tfds", "tf"]
