"""Summary numbers of a tree (what ``linnet taxonomy stats`` prints)."""

from __future__ import annotations

from typing import Any

from linnet.taxonomy.core import Taxonomy


def taxonomy_stats(taxonomy: Taxonomy) -> dict[str, Any]:
    """Nodes, roots, leaves and depth of a tree, with nodes and leaves per level.

    Example:
    >>> from linnet.taxonomy import Taxonomy
    >>> stats = taxonomy_stats(Taxonomy.from_paths(["A > B", "A > C", "D"]))
    >>> stats["nodes_per_level"], stats["leaves_per_level"]
    ([2, 2], [1, 2])
    """
    leaves_per_level = [0] * taxonomy.num_levels
    for node in taxonomy.nodes:
        if not taxonomy.children(node.id):
            leaves_per_level[node.level - 1] += 1
    return {
        "source": taxonomy.source,
        "version": taxonomy.version,
        "locales": list(taxonomy.locales),
        "nodes": len(taxonomy),
        "roots": len(taxonomy.roots),
        "leaves": sum(leaves_per_level),
        "levels": taxonomy.num_levels,
        "nodes_per_level": taxonomy.level_sizes(),
        "leaves_per_level": leaves_per_level,
        "fingerprint": taxonomy.fingerprint(),
    }
