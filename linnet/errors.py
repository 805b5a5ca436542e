"""Errors a user can fix. The command line prints them without a traceback and exits 2."""


class LinnetError(Exception):
    """Base class of every error caused by input, configuration or files the user controls."""


class TaxonomyError(LinnetError):
    """A taxonomy file or tree is malformed (the message names file, line and text)."""


class CatalogError(LinnetError):
    """A catalog file, schema or row is unusable (the message names file, row id and field)."""


class ConfigError(LinnetError):
    """A configuration key, value or path is wrong (the message names the key or path)."""


class EvaluationError(LinnetError):
    """Evaluation or calibration cannot run on the given split, model or calibration file (names what differs)."""


class EmbeddingError(LinnetError):
    """Vectors or an index are unusable: dimension mismatch, empty candidates, k too large, non-finite values."""
