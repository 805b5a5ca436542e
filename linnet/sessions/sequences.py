"""Ordered sequences per user (or session), the item vocabulary, and the time split.

Everything is NumPy over the whole log at once (sorts, ``np.unique``, ``searchsorted``); no Python per
event. A `Sequences` holds the users' events back to back (``offsets[u]:offsets[u + 1]`` are user ``u``'s),
ordered by time, then basket, then file line.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"user": ["u", "u", "v"], "item": ["b", "a", "a"], "time": [2, 1, 5],
    ...                       "basket": ["2", "1", "3"], "title": "", "line": [2, 3, 4]})
    >>> vocabulary = ItemVocabulary.from_items(frame["item"])
    >>> sequences = build_sequences(frame, vocabulary)
    >>> [vocabulary.ids[i] for i in sequences.items_of(0)]
    ['a', 'b']
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400


@dataclasses.dataclass
class ItemVocabulary:
    """Item ids, most frequent first (ties by id); an item's index is its position."""

    ids: np.ndarray  # object array of str
    counts: np.ndarray  # int64, training events per item

    @classmethod
    def from_items(cls, items, min_count: int = 1) -> ItemVocabulary:
        values, counts = np.unique(np.asarray(items, dtype=object).astype(str), return_counts=True)
        order = np.lexsort((values, -counts))
        keep = counts[order] >= min_count
        return cls(values[order][keep].astype(object), counts[order][keep].astype(np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, items) -> np.ndarray:
        """int32 index of each item, -1 for an item not in the vocabulary."""
        return pd.Index(self.ids).get_indexer(np.asarray(items, dtype=object)).astype(np.int32)


@dataclasses.dataclass
class Sequences:
    """Users' ordered events: ``items`` (vocabulary index, -1 = unknown), ``times`` (int64 seconds) and
    ``baskets`` (0, 1, 2... per user, in order), user ``u``'s at ``offsets[u]:offsets[u + 1]``."""

    users: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    baskets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def items_of(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user]:self.offsets[user + 1]]

    def owner(self) -> np.ndarray:
        """The user index of every event."""
        return np.repeat(np.arange(len(self.users)), self.lengths())

    def select(self, keep: np.ndarray) -> Sequences:
        """The users where ``keep`` (bool per user) is true."""
        keep = np.asarray(keep, dtype=bool)
        events = np.repeat(keep, self.lengths())
        return Sequences(self.users[keep], np.concatenate([[0], np.cumsum(self.lengths()[keep])]).astype(np.int64),
                         self.items[events], self.times[events], self.baskets[events])

    def known_only(self) -> Sequences:
        """The same users with their unknown (-1) items dropped (a user may be left with none)."""
        known = self.items >= 0
        lengths = np.bincount(self.owner()[known], minlength=len(self.users))
        return Sequences(self.users, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                         self.items[known], self.times[known], self.baskets[known])

    def padded(self, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(items [U, L] int32 padded with -1, times [U, L] int64 padded with 0)``, each user's last
        ``max_length`` events (all when None)."""
        lengths = self.lengths()
        width = int(lengths.max(initial=0)) if max_length is None else int(max_length)
        width = max(width, 1)
        owner = self.owner()
        position = np.arange(len(self.items)) - self.offsets[owner]
        start = np.maximum(lengths - width, 0)[owner]
        keep = position >= start
        items = np.full((len(self.users), width), -1, dtype=np.int32)
        times = np.zeros((len(self.users), width), dtype=np.int64)
        items[owner[keep], (position - start)[keep]] = self.items[keep]
        times[owner[keep], (position - start)[keep]] = self.times[keep]
        return items, times


def build_sequences(frame: pd.DataFrame, vocabulary: ItemVocabulary) -> Sequences:
    """One sequence per user of ``frame`` (an `EventLog.frame`), ordered by time, basket, then line."""
    ordered = frame.sort_values(["user", "time", "basket", "line"], kind="stable")
    users, first = np.unique(ordered["user"].to_numpy(dtype=object).astype(str), return_index=True)
    offsets = np.append(first, len(ordered)).astype(np.int64)
    times = ordered["time"].to_numpy(np.int64)
    basket_key = ordered["basket"].to_numpy(dtype=object).astype(str)
    owner = np.repeat(np.arange(len(users)), np.diff(offsets))
    new_basket = np.ones(len(ordered), dtype=bool)
    new_basket[1:] = (owner[1:] != owner[:-1]) | (times[1:] != times[:-1]) | (basket_key[1:] != basket_key[:-1])
    counter = np.cumsum(new_basket)
    baskets = counter - counter[offsets[:-1]][owner]
    return Sequences(users.astype(object), offsets, vocabulary.index(ordered["item"].to_numpy(dtype=object)),
                     times, baskets.astype(np.int32))


def min_items_filter(sequences: Sequences, min_items: int) -> Sequences:
    """The users with at least ``min_items`` known events (the Best Buy design trains on users with 5+)."""
    known = np.bincount(sequences.owner()[sequences.items >= 0], minlength=len(sequences))
    return sequences.select(known >= min_items)


@dataclasses.dataclass
class TimeSplit:
    """Events before ``cutoff`` (training), and each returning user's first basket from ``cutoff`` on."""

    train: pd.DataFrame
    test_users: np.ndarray  # users with events before and after the cutoff
    test_items: list[np.ndarray]  # the item ids of each test user's first basket after the cutoff
    test_times: np.ndarray  # that basket's time


def time_split(frame: pd.DataFrame, cutoff_seconds: int) -> TimeSplit:
    """Split an `EventLog.frame` in time: train on events before ``cutoff_seconds``, test each user who
    bought before and after it on the first basket after it (all items of that basket are its targets)."""
    before = frame["time"].to_numpy() < cutoff_seconds
    train, after = frame[before], frame[~before]
    after = after[after["user"].isin(set(train["user"]))]
    after = after.sort_values(["user", "time", "basket", "line"], kind="stable")
    first = after.groupby("user", sort=True)[["time", "basket"]].transform("first")
    target = after[(after["time"] == first["time"]) & (after["basket"] == first["basket"])]
    users, starts = np.unique(target["user"].to_numpy(dtype=object).astype(str), return_index=True)
    items = target["item"].to_numpy(dtype=object).astype(str)
    groups = np.split(items, starts[1:])
    return TimeSplit(train, users.astype(object), [np.unique(group) for group in groups],
                     target["time"].to_numpy(np.int64)[starts])


def split_last_basket(sequences: Sequences) -> tuple[Sequences, np.ndarray, np.ndarray]:
    """For users with two baskets or more: ``(history without the last basket, user index of each target,
    target item)`` (the targets are the known items of each user's last basket)."""
    last = np.zeros(len(sequences), dtype=np.int64)
    np.maximum.at(last, sequences.owner(), sequences.baskets)
    chosen = sequences.select(last >= 1)
    owner = chosen.owner()
    in_last = chosen.baskets == last[last >= 1][owner]
    lengths = np.bincount(owner[~in_last], minlength=len(chosen))
    history = Sequences(chosen.users, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        chosen.items[~in_last], chosen.times[~in_last], chosen.baskets[~in_last])
    target = in_last & (chosen.items >= 0)
    return history, owner[target], chosen.items[target]
