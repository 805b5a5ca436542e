"""Event logs: explicit schema, cleaning counted per reason, bad rows named by file and line, ordered
sequences, the min-items filter and the time split (no TensorFlow)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from linnet.errors import CatalogError, ConfigError
from linnet.sessions.events import CleaningRules, EventSchema, read_events
from linnet.sessions.sequences import (
    ItemVocabulary,
    build_sequences,
    min_items_filter,
    time_split,
)

SCHEMA = EventSchema(user_column="customer", item_column="sku", time_column="when", basket_column="order",
                     quantity_column="qty", title_column="name")
HEADER = "order,sku,name,qty,when,customer\n"


def write(tmp_path, body: str, name: str = "events.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_cleaning_counts_each_reason_and_names_bad_rows_by_line(tmp_path):
    path = write(tmp_path,
                 "1,A,\"two\nlines\",1,2020-01-01 10:00:00,u1\n"   # lines 2-3: a quoted newline
                 "1,B,b,1,2020-01-01 10:00:00,\n"                 # line 4: no user
                 "C2,A,a,-1,2020-01-02 10:00:00,u1\n"            # line 5: cancellation (prefix and quantity)
                 "3,POST,postage,1,2020-01-02 10:00:00,u1\n"     # line 6: excluded item
                 "4,A,a,1,not a date,u2\n"                        # line 7: bad time
                 "4,,a,1,2020-01-03 10:00:00,u2\n"                # line 8: empty item
                 "5,A,a,1,2020-01-04 10:00:00,u2,extra,fields\n"  # line 9: malformed
                 "6,B,b,2,2020-01-05 10:00:00,u2\n")              # line 10: kept
    log = read_events(path, SCHEMA, CleaningRules(cancel_basket_prefixes=("C",), exclude_items="[^0-9A-Z]*|POST"))
    report = log.report
    assert report.dropped == {"bad row": 3, "no user": 1, "return or cancellation": 1, "excluded item": 1}
    assert report.kept == 2 and list(log.frame["line"]) == [2, 10]
    assert [(row.location, row.field) for row in report.bad_rows] == [(7, "when"), (8, "sku"), (9, None)]
    assert all(row.file == str(path) for row in report.bad_rows)
    assert "line 7" in report.bad_rows[0].message() and "u2" in report.bad_rows[0].message()


def test_no_column_is_assumed(tmp_path):
    path = write(tmp_path, "1,A,a,1,2020-01-01,u1\n")
    with pytest.raises(CatalogError, match="'user_id'.*did you mean|user_id"):
        read_events(path, EventSchema(user_column="user_id", item_column="sku", time_column="when"))
    with pytest.raises(ConfigError, match="user-column or --session-column"):
        EventSchema(item_column="sku", time_column="when")


def test_event_filter_and_sessions(tmp_path):
    path = tmp_path / "clicks.jsonl"
    pd.DataFrame({"sid": ["s1", "s1", "s2"], "item": ["a", "b", "c"], "ts": [30, 10, 20],
                  "type": ["view", "view", "cart"]}).to_json(path, orient="records", lines=True)
    schema = EventSchema(session_column="sid", item_column="item", time_column="ts", time_format="unix",
                         event_column="type", event_values=("view",))
    log = read_events(path, schema)
    assert log.report.dropped["other event"] == 1
    sequences = build_sequences(log.frame, ItemVocabulary.from_items(log.frame["item"]))
    vocabulary = ItemVocabulary.from_items(log.frame["item"])
    assert [vocabulary.ids[i] for i in sequences.items_of(0)] == ["b", "a"]  # ordered by time


def test_sequences_order_by_time_then_basket_and_min_items(tmp_path):
    path = write(tmp_path, "9,X,x,1,2020-01-02 00:00:00,u1\n"
                           "8,Y,y,1,2020-01-02 00:00:00,u1\n"  # the same time as basket 9: basket 8 first
                           "7,Z,z,1,2020-01-01 00:00:00,u1\n"
                           "1,X,x,1,2020-01-01 00:00:00,u2\n")
    log = read_events(path, SCHEMA)
    vocabulary = ItemVocabulary.from_items(log.frame["item"])
    sequences = build_sequences(log.frame, vocabulary)
    assert list(sequences.users) == ["u1", "u2"]
    assert [vocabulary.ids[i] for i in sequences.items_of(0)] == ["Z", "Y", "X"]
    assert list(sequences.baskets[:3]) == [0, 1, 2]
    assert list(min_items_filter(sequences, 2).users) == ["u1"]


def test_time_split_takes_each_returning_users_first_basket(tmp_path):
    frame = pd.DataFrame({"user": ["a", "a", "a", "a", "b", "c"], "item": ["1", "2", "3", "4", "1", "9"],
                          "time": [0, 10, 20, 30, 25, 5], "basket": ["x", "y", "z", "w", "v", "u"],
                          "title": "", "line": np.arange(6)})
    split = time_split(frame, 10)
    assert list(split.train["item"]) == ["1", "9"]
    assert list(split.test_users) == ["a"]  # b has nothing before, c nothing after
    assert [list(items) for items in split.test_items] == [["2"]]


def test_reading_events_does_not_import_tensorflow():
    assert "linnet.sessions.events" in sys.modules
    import subprocess

    code = ("import sys, linnet.sessions.events, linnet.sessions.sequences, linnet.sessions.baselines, "
            "linnet.sessions.metrics, linnet.sessions.config; print('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
