"""One place that makes progress bars: `progress_bar`, a tqdm bar that stays off where it would only add noise.

A bar draws itself with carriage returns, which turn a log file into one long line; so a bar is shown only
when its stream (stderr) is a terminal, or when ``LINNET_PROGRESS=1`` asks for it anyway
(``LINNET_PROGRESS=0`` turns every bar off). ``enabled=False`` (a command's ``--quiet``) always wins.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

#: Environment variable that forces bars on (``1``) or off (``0``) whatever the stream is.
PROGRESS_ENV = "LINNET_PROGRESS"


def bars_wanted(stream=None) -> bool:
    """True when a bar on ``stream`` (default: stderr) helps: ``LINNET_PROGRESS`` when set, else a terminal."""
    forced = os.environ.get(PROGRESS_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(iterable=None, *, enabled: bool = True, **options):
    """``tqdm(iterable, **options)``, disabled unless ``enabled`` and `bars_wanted`.

    Example:
        >>> sum(progress_bar(range(3), enabled=False))
        3
    """
    return tqdm(iterable, disable=not (enabled and bars_wanted(options.get("file"))), **options)
