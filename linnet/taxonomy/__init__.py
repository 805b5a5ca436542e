"""The category tree LinNét predicts into: `Taxonomy`, `Node` and the readers of taxonomy files.

Importing this package does not import TensorFlow (`Taxonomy.child_mask_tensor` does, on first use).

Example:
>>> from linnet.taxonomy import Taxonomy
>>> Taxonomy.from_paths(["Shoes > Boots", "Bags"]).level_sizes()
[2, 1]
"""

from linnet.taxonomy.core import Node, Taxonomy

# Importing formats also registers its readers behind Taxonomy.from_paths, from_google, ... (see core).
from linnet.taxonomy.formats import load_taxonomy, sniff_format
from linnet.taxonomy.mapping import TaxonomyMapping, load_shopify_google_mapping

__all__ = [
    "Node",
    "Taxonomy",
    "TaxonomyMapping",
    "load_shopify_google_mapping",
    "load_taxonomy",
    "sniff_format",
]
