import numpy as np
import pandas as pd
import pytest

from cinerec.data.signals import derive_sessions, implicit_confidence


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "value", "watch_seconds"])
    frame["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC")
    return frame


def test_confidence_by_event_rating_and_watch_fraction():
    interactions = _frame(
        [
            ("u", "a", "rating", 4.0, None),
            ("u", "a", "rating", 0.5, None),
            ("u", "b", "watch", 1.0, 1800.0),  # half of a 60-minute film
            ("u", "c", "watch", 1.0, 7200.0),  # more than its length: capped at 1
            ("u", "d", "watch", 1.0, 100.0),  # unknown length
            ("u", "a", "like", 1.0, None),
            ("u", "a", "skip", 1.0, None),
            ("u", "a", "view", 1.0, None),
        ]
    )
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "duration_min": [90, 60, 30, None]})
    conf = implicit_confidence(interactions, items)
    np.testing.assert_allclose(conf, [0.8, 0.1, 0.5, 1.0, 0.5, 1.0, 0.0, 0.3], rtol=1e-6)
    assert conf.dtype == np.float32


def test_watch_without_catalog_uses_unknown_confidence():
    conf = implicit_confidence(_frame([("u", "a", "watch", 1.0, 10.0)]))
    assert conf[0] == pytest.approx(0.5)


def test_sessions_split_on_inactivity_gap_and_keep_given_ids():
    times = pd.to_datetime(
        ["2024-01-01 10:00", "2024-01-01 10:20", "2024-01-01 11:30", "2024-01-01 10:00"], utc=True
    )
    frame = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "v"],
            "timestamp": times,
            "session_id": [None, None, None, "s9"],
        }
    )
    # shuffled input order must not matter: results align to the index
    shuffled = frame.iloc[[2, 0, 3, 1]]
    sessions = derive_sessions(shuffled)
    assert sessions.loc[0] == "u:0"
    assert sessions.loc[1] == "u:0"
    assert sessions.loc[2] == "u:1"
    assert sessions.loc[3] == "s9"
