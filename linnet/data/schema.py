"""`CatalogSchema`: which column of a user's catalog plays which role.

The schema is saved as ``schema.yaml`` in every run directory, so `evaluate` and `predict` read new
catalogs exactly the way `train` read the training one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linnet.atomic_files import write_yaml_atomically
from linnet.errors import CatalogError, ConfigError

#: Feature key of the rendered ``key: value`` attribute text.
ATTRIBUTES_FIELD = "attributes"
CATEGORY_KINDS = ("path", "id")


def _as_list(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"schema key {key!r} must be a list of column names, got {value!r}")
    return list(value)


@dataclass
class CatalogSchema:
    """Names the columns of a catalog by role.

    Args:
        id_column: Unique product id (string or integer values).
        text_columns: Text fields in order (``title``, ``description``, ``vendor``, ``tags``, ... any
            names); each becomes a ``tf.string`` feature of the same name.
        attribute_columns: Columns rendered together into the ``attributes`` text feature as
            ``key: value; key: value``. A column whose cells hold a JSON object or ``k: v; k: v`` text is
            expanded into its pairs.
        category_column: One column holding the category: a path of names joined by ``path_separator``
            (``category_kind="path"``) or a taxonomy node id (``category_kind="id"``).
        path_separator: Level separator of ``category_column`` paths.
        level_columns: Alternatively, one column per level (``l1,l2,l3``); an empty cell ends the path.
        category_kind: ``"path"`` (names) or ``"id"`` (taxonomy node ids, e.g. Google's ``3237``).
        category_locale: Look path names up in this locale of the taxonomy (``"de-DE"``); primary names
            when None.
        image_column: Local path (relative to ``image_root``), ``http(s)`` URL (fetched with
            ``linnet images fetch --out DIR`` and found in ``image_root``) or inline bytes.
        image_root: Directory of relative image paths and fetched URLs; the catalog's own directory when
            None.
        value_column: Optional per-product weight / business value, used by evaluation.
        allow_images_outside_root: Read image paths that resolve (symlinks followed) outside ``image_root``;
            off by default, so a catalog cannot make LinNét read ``../../etc/passwd`` (docs/security.md).

    Raises:
        ConfigError: on conflicting or malformed keys.

    Example:
        >>> schema = CatalogSchema(text_columns=["title", "description"], attribute_columns=["colour"],
        ...                        level_columns=["l1", "l2"])
        >>> schema.feature_text_fields
        ['title', 'description', 'attributes']
        >>> schema.has_image, schema.has_category
        (False, True)
    """

    id_column: str = "id"
    text_columns: list[str] = field(default_factory=lambda: ["title"])
    attribute_columns: list[str] = field(default_factory=list)
    category_column: str | None = None
    path_separator: str = " > "
    level_columns: list[str] | None = None
    category_kind: str = "path"
    category_locale: str | None = None
    image_column: str | None = None
    image_root: str | None = None
    value_column: str | None = None
    allow_images_outside_root: bool = False

    def __post_init__(self) -> None:
        self.text_columns = _as_list(self.text_columns, "text_columns") or []
        self.attribute_columns = _as_list(self.attribute_columns, "attribute_columns") or []
        self.level_columns = _as_list(self.level_columns, "level_columns")
        if not isinstance(self.id_column, str) or not self.id_column:
            raise ConfigError(f"schema key 'id_column' must name a column, got {self.id_column!r}")
        if self.category_column is not None and self.level_columns:
            raise ConfigError("schema: give either 'category_column' or 'level_columns', not both")
        if self.category_kind not in CATEGORY_KINDS:
            raise ConfigError(f"schema key 'category_kind' must be one of {CATEGORY_KINDS}, got {self.category_kind!r}")
        if self.level_columns and self.category_kind != "path":
            raise ConfigError("schema: 'level_columns' hold names, so 'category_kind' must be 'path'")
        if not isinstance(self.path_separator, str) or not self.path_separator:
            raise ConfigError("schema key 'path_separator' must be a non-empty string")
        if ATTRIBUTES_FIELD in self.text_columns and self.attribute_columns:
            raise ConfigError(f"schema: a text column named {ATTRIBUTES_FIELD!r} collides with the rendered attributes")
        if not (self.text_columns or self.attribute_columns or self.image_column):
            raise ConfigError("schema: name at least one text, attribute or image column")
        if not isinstance(self.allow_images_outside_root, bool):
            raise ConfigError("schema key 'allow_images_outside_root' must be true or false")
        if self.image_root is not None:
            self.image_root = os.fspath(self.image_root)
        names = self.columns()
        repeated = sorted({name for name in names if names.count(name) > 1} - {self.id_column})
        if repeated:
            raise ConfigError(f"schema: column(s) {repeated} are given more than one role")

    # ------------------------------------------------------------------ derived
    @property
    def feature_text_fields(self) -> list[str]:
        """Feature keys of the text inputs: the text columns, then ``attributes`` when there are any."""
        return list(self.text_columns) + ([ATTRIBUTES_FIELD] if self.attribute_columns else [])

    @property
    def has_image(self) -> bool:
        return self.image_column is not None

    @property
    def has_category(self) -> bool:
        return self.category_column is not None or bool(self.level_columns)

    def columns(self) -> list[str]:
        """Every column the schema reads, in role order (id first)."""
        names = [self.id_column, *self.text_columns, *self.attribute_columns]
        names += [self.category_column] if self.category_column else []
        names += list(self.level_columns or [])
        names += [name for name in (self.image_column, self.value_column) if name]
        return names

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "schema") -> CatalogSchema:
        """Builds a schema from a mapping; an unknown key raises `ConfigError` naming it and ``where``."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: must be a mapping of schema keys, got {type(data).__name__}")
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown schema key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Writes the schema as YAML atomically and returns the path."""
        return write_yaml_atomically(path, self.to_dict())

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> CatalogSchema:
        """Reads a schema YAML file (keys as in `CatalogSchema`).

        Raises:
            ConfigError: naming the file when it is missing, not YAML, or holds an unknown key.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: schema file not found") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        return cls.from_dict(data, where=str(path))

    # run directories look for `load`
    load = from_yaml
    save = to_yaml


def check_input_columns(schema: CatalogSchema, header, source, allow_missing_text: bool = False) -> None:
    """Refuses a catalog whose header lacks columns the model reads, before any row is read.

    The id column must be there. The text and attribute columns of ``schema`` (what the model was trained
    on) must all be there, unless ``allow_missing_text`` lets missing ones read as empty text; even then
    at least one text, attribute or image column must be found, or every prediction would be the same.

    Args:
        schema: the model's `CatalogSchema` (a run's ``schema.yaml``, or the flags overriding it).
        header: the catalog's column names (`linnet.data.CatalogReader.columns`).
        source: the catalog file, named in the error.
        allow_missing_text: let some text/attribute columns be absent (they read as empty).

    Raises:
        CatalogError: naming the file, the missing columns, the columns the model expects and those found.

    Example:
        >>> schema = CatalogSchema(text_columns=["title", "description"])
        >>> check_input_columns(schema, ["id", "title", "description", "price"], "products.csv")
        >>> check_input_columns(schema, ["id", "title"], "products.csv", allow_missing_text=True)
        >>> check_input_columns(schema, ["id", "name"], "products.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linnet.errors.CatalogError: products.csv: the model reads column(s) ['title', 'description'] but the file ...
    """
    found = list(header)
    if schema.id_column not in found:
        raise CatalogError(f"{source}: no id column {schema.id_column!r}; found {found} (name it with --id-column)")
    expected = [*schema.text_columns, *schema.attribute_columns]
    missing = [name for name in expected if name not in found]
    inputs_found = len(missing) < len(expected) or (schema.image_column is not None and schema.image_column in found)
    if not missing or (allow_missing_text and inputs_found):
        return
    escape = ", or pass --allow-missing-text to read the missing ones as empty text" if inputs_found else ""
    raise CatalogError(f"{source}: the model reads column(s) {expected} but the file lacks {missing}; found "
                       f"{found}. Name them with --text-columns/--attribute-columns (or --schema){escape}")
