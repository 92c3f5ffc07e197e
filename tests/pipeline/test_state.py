"""UserLimits: the users table's parental limits, as the pipeline reads them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cinerec.data.schemas import empty_frame
from cinerec.errors import DataError, IntegrityError
from cinerec.pipeline.state import UserLimits
from cinerec.pipeline.types import Constraints


def test_limits_from_a_users_table_round_trip(tmp_path: Path) -> None:
    users = pd.DataFrame(
        {
            "user_id": ["kid", "teen", "adult", 42],
            "max_age_rating": pd.array([7, 13, None, 0], dtype="Int32"),
        }
    )
    limits = UserLimits.from_users(users)
    assert len(limits) == 3  # no limit: not kept
    assert limits.constraints("kid") == Constraints(max_min_age=7)
    assert limits.constraints("42") == Constraints(max_min_age=0)  # ids are strings
    assert limits.constraints("adult") == Constraints()
    assert limits.constraints("stranger") == Constraints()
    assert limits.constraints(None) == Constraints()
    limits.save(tmp_path / "limits.parquet")
    again = UserLimits.load(tmp_path / "limits.parquet")
    assert [again.constraints(u) for u in ("kid", "teen", "42", "adult")] == [
        Constraints(max_min_age=a) for a in (7, 13, 0, None)
    ]


def test_no_users_table_means_no_limits() -> None:
    assert len(UserLimits.from_users(empty_frame("users"))) == 0
    assert len(UserLimits.from_users(pd.DataFrame({"user_id": ["a"]}))) == 0


@pytest.mark.parametrize(
    ("ages", "match"),
    [([-1], "whole age"), ([7.5], "whole age"), ([400], "whole age"), ([7, 9], "duplicate")],
)
def test_bad_limits_are_refused_by_name(ages: list[float], match: str) -> None:
    ids = ["kid"] * len(ages)
    with pytest.raises(DataError, match=match):
        UserLimits.from_users(pd.DataFrame({"user_id": ids, "max_age_rating": ages}))


def test_an_unreadable_limits_file_is_an_integrity_error(tmp_path: Path) -> None:
    (tmp_path / "limits.parquet").write_bytes(b"not parquet")
    with pytest.raises(IntegrityError, match="user limits"):
        UserLimits.load(tmp_path / "limits.parquet")
