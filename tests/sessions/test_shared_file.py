"""The shared Online Retail II file end to end (skips when ../shared/data is absent); cheap: the whole file
is read and cleaned (vectorised, ~4 s), the model is fitted on a slice of its customers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from linnet.sessions.config import Item2VecConfig, SessionsConfig
from linnet.sessions.events import CleaningRules, EventLog, EventSchema, read_events
from linnet.sessions.runs import evaluate_split, fit_model
from linnet.sessions.sequences import time_split

SCHEMA = EventSchema(user_column="customer_id", item_column="stock_code", time_column="invoice_date",
                     basket_column="invoice", quantity_column="quantity", title_column="description")
# The file README's "clean purchase" rule: customer present, not C/A invoices, quantity > 0, codes starting
# with a digit.
RULES = CleaningRules(cancel_basket_prefixes=("C", "A"), exclude_items="[^0-9].*")


@pytest.fixture(scope="module")
def retail_log(shared_data):
    path = shared_data / "sessions" / "online_retail_ii_2009_2010.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return read_events(path, SCHEMA, RULES)


def test_cleaning_reproduces_the_files_readme_counts(retail_log):
    frame = retail_log.frame
    assert retail_log.report.kept == 391_877
    assert (frame["user"].nunique(), frame["basket"].nunique(), frame["item"].nunique()) == (4_239, 18_192, 3_998)
    assert retail_log.report.dropped["no user"] == 100_207
    assert retail_log.report.bad_rows == []


def test_a_slice_runs_end_to_end_on_the_time_split(retail_log):
    frame = retail_log.frame
    customers = np.sort(frame["user"].unique())[:200]
    sliced = frame[frame["user"].isin(customers)]
    split = time_split(sliced, int(pd.Timestamp("2010-09-01").value // 10**9))
    train_log = EventLog(split.train, retail_log.report)
    config = SessionsConfig(item2vec=Item2VecConfig(dim=8, epochs=1))
    model = fit_model(train_log, SCHEMA, RULES, config)
    rows = {row["method"]: row for row in evaluate_split(model, train_log, split.test_users, split.test_items)}
    assert len(rows) == 5 and rows["popularity (last 90 days)"]["users"] == len(split.test_users) > 50
    own = rows["own past items (frequency, recency)"]["hit_rate@10"]
    assert own > rows["popularity (last 90 days)"]["hit_rate@10"]  # repeat purchases dominate retail
    assert rows["default (repeat-aware + neighbours + item2vec)"]["hit_rate@10"] >= own - 0.02
    assert dataclasses.asdict(model.config.item2vec)["dim"] == model.vectors.shape[1] == 8
