"""Splits: hand-checked cases and the partition property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.evaluation.splits import (
    SplitError,
    leave_last_n,
    make_split,
    random_split,
    temporal_global,
    validation_carve,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Interactions from (user, item, hour offset) triples."""
    return pd.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "event": "watch",
            "value": np.float32(1.0),
            "watch_seconds": np.nan,
            "timestamp": [T0 + pd.Timedelta(hours=h) for _, _, h in rows],
            "session_id": None,
        }
    )


def test_leave_last_n_per_user_with_ties() -> None:
    df = frame(
        [("u", "a", 1), ("u", "b", 3), ("u", "c", 3), ("u", "d", 2), ("v", "a", 5), ("w", "x", 1)]
    )
    split = leave_last_n(df, n=1)
    # u's latest time 3 is tied between b and c: c comes later in input order
    assert list(zip(split.test["user_id"], split.test["item_id"], strict=True)) == [("u", "c")]
    # v and w have a single row: min_train=1 keeps it in train
    assert set(split.train["user_id"]) == {"u", "v", "w"}
    two = leave_last_n(df, n=2)
    assert set(two.test["item_id"]) == {"b", "c"}
    many = leave_last_n(df, n=10)  # at most all but min_train rows
    assert sorted(many.test["item_id"]) == ["b", "c", "d"]
    assert leave_last_n(df, n=1, min_train=0).test["user_id"].tolist().count("v") == 1


def test_temporal_global_fraction_and_cut() -> None:
    df = frame([("u", str(h), h) for h in range(10)])
    split = temporal_global(df, 0.2)
    assert sorted(split.test["item_id"]) == ["8", "9"]
    by_cut = temporal_global(df, cut="2024-01-01T07:00:00")
    assert sorted(by_cut.test["item_id"]) == ["7", "8", "9"]
    assert make_split("temporal:2024-01-01T07:00", df).test.shape[0] == 3
    with pytest.raises(SplitError):
        temporal_global(df, 1.5)


def test_random_split_stratified_and_seeded() -> None:
    rows = [(f"u{u}", f"i{i}", i) for u in range(5) for i in range(8)]
    df = frame(rows)
    a = random_split(df, 0.25, seed=7)
    b = random_split(df, 0.25, seed=7)
    c = random_split(df, 0.25, seed=8)
    assert a.test.index.equals(b.test.index)
    assert not a.test.index.equals(c.test.index)
    assert (a.test.groupby("user_id").size() == 2).all()  # 25% of 8 rows each
    by_item = random_split(df, 0.4, by="item", seed=0)
    assert (by_item.test.groupby("item_id").size() == 2).all()  # round(0.4 * 5)


def test_make_split_specs_and_validation() -> None:
    df = frame([(f"u{u}", f"i{i}", i + u) for u in range(4) for i in range(6)])
    assert make_split("leave-last:1", df).test.shape[0] == 4
    assert make_split("leave-last:2", df).params == {"n": 2, "min_train": 1}
    assert make_split("random:0.5", df, seed=1).test.shape[0] == 12
    assert make_split("random-item:0.25", df).params["by"] == "item"
    assert make_split("temporal:0.25", df).name == "temporal:0.25"
    for bad in ("nope:1", "leave-last:x", "random:2"):
        with pytest.raises(SplitError):
            make_split(bad, df)
    val = validation_carve(make_split("leave-last:1", df).train, "leave_last_n", n=1)
    assert val.name == "validation/leave-last:1"
    assert val.test.shape[0] == 4
    assert validation_carve(df, "temporal", test_fraction=0.5).test.shape[0] >= 12
    assert make_split("leave-last:1", df).summary()["test_users"] == 4


def test_make_split_refuses_an_empty_part_naming_the_cause() -> None:
    one_each = frame([(f"u{u}", f"i{u}", u) for u in range(4)])
    with pytest.raises(SplitError, match=r"'leave-last:1' leaves the test part of 4 .*one inter"):
        make_split("leave-last:1", one_each)
    assert len(leave_last_n(one_each, 1).train) == 4  # the partition itself is still allowed
    df = frame([("u", f"i{i}", i) for i in range(3)])
    with pytest.raises(SplitError, match=r"test part .* outside the interactions' time range"):
        make_split("temporal:2030-01-01", df)
    with pytest.raises(SplitError, match=r"training part .* outside"):
        make_split("temporal:2000-01-01", df)
    assert make_split("leave-last:1", frame([])).test.empty  # no rows: nothing to refuse


interaction_rows = st.lists(
    st.tuples(st.sampled_from("abcde"), st.sampled_from("pqrst"), st.integers(0, 6)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    interaction_rows,
    st.sampled_from(
        [
            "temporal:0.2",
            "temporal:0.5",
            "leave-last:1",
            "leave-last:3",
            "random:0.25",
            "random:0.6",
            "random-item:0.3",
        ]
    ),
    st.integers(0, 3),
)
def test_splits_partition_rows(rows, spec: str, seed: int) -> None:
    df = frame(rows)
    df.index = pd.RangeIndex(100, 100 + len(df))  # a non-default index survives
    try:
        split = make_split(spec, df, seed=seed)
    except SplitError as exc:  # refused only for some rows with one part left empty
        assert len(df) and "empty" in str(exc)
        return
    assert not len(df) or (len(split.train) and len(split.test))
    train_idx, test_idx = set(split.train.index), set(split.test.index)
    assert not train_idx & test_idx
    assert train_idx | test_idx == set(df.index)
    assert len(split.train) + len(split.test) == len(df)
    if spec.startswith("temporal") and len(split.test) and len(split.train):
        assert split.train["timestamp"].max() < split.test["timestamp"].min()
    if spec.startswith("leave-last"):
        for user, rows_u in df.groupby("user_id"):
            test_u = split.test[split.test["user_id"] == user]
            train_u = split.train[split.train["user_id"] == user]
            assert len(train_u) >= 1
            if len(test_u):
                assert train_u["timestamp"].max() <= test_u["timestamp"].min()
            assert len(test_u) == min(int(spec.split(":")[1]), len(rows_u) - 1)
