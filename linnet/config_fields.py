"""Strict dataclass configs: unknown keys and wrong types fail with the key named.

Configs are plain dataclasses so that they print, compare and round-trip through YAML. ``from_dict``
refuses any key the dataclass does not declare (a typo such as ``learnig_rate`` must not silently fall back
to a default) and names the full dotted path of the offending key.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from linnet.errors import ConfigError


def config_from_dict(cls, data: dict | None, where: str = ""):
    """Builds dataclass ``cls`` from ``data``, raising ``ConfigError`` on unknown keys.

    Nested dataclass fields are built recursively; ``where`` is the dotted prefix used in messages.

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int = 0
        >>> config_from_dict(Point, {"x": 3})
        Point(x=3)
    """
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{where or cls.__name__}' must be a mapping, got {type(data).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + key for key in unknown)}; "
            f"known keys{' of ' + where if where else ''}: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        values[name] = _coerce(hints[name], value, key)
    try:
        instance = cls(**values)
    except TypeError as error:
        raise ConfigError(f"config section '{where or cls.__name__}': {error}") from None
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(where)
    return instance


def config_to_dict(instance) -> dict[str, Any]:
    """The plain-``dict`` form of a config dataclass (YAML/JSON-ready)."""
    return dataclasses.asdict(instance)


def _coerce(hint, value, key: str):
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if value is None:
        if hint is type(None) or type(None) in arguments or hint is Any:
            return None
        raise ConfigError(f"config key '{key}' must not be empty")
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, key)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [option for option in arguments if option is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"config key '{key}' has an unusable value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        (item_hint,) = arguments or (Any,)
        return [_coerce(item_hint, item, f"{key}[{index}]") for index, item in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        try:
            return float(value)  # YAML reads "1e-3" as a string
        except ValueError:
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def config_from_yaml(path: str | os.PathLike, build: Callable[[Any], Any], section: str | None = None):
    """Reads a YAML config file and builds it with ``build`` (a ``from_dict``); every error names the file.

    Args:
        path: the YAML file.
        build: makes the config from the parsed mapping (``{}`` for an empty file).
        section: when the file's mapping has this key holding a mapping, only that part is built (a model
            config read out of a whole training config).

    Raises:
        ConfigError: the file cannot be read, is not YAML, or ``build`` refuses it (message prefixed with
            the path).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {error}") from None
    if section is not None and isinstance(data, dict) and isinstance(data.get(section), dict):
        data = data[section]
    try:
        return build(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
