import numpy as np
import pandas as pd

from cinerec.data.parsing import as_id_strings, parse_numbers, parse_timestamps


def test_parse_timestamps_variants():
    col = pd.Series(["1970-01-01T01:00:00+01:00", "86400", "2001-02-03 04:05:06", None, "no"])
    stamps, bad = parse_timestamps(col)
    assert stamps.iloc[0] == pd.Timestamp(0, unit="s", tz="UTC")
    assert stamps.iloc[1] == pd.Timestamp(86400, unit="s", tz="UTC")
    assert stamps.iloc[2] == pd.Timestamp("2001-02-03 04:05:06", tz="UTC")
    assert pd.isna(stamps.iloc[3])
    assert bad.tolist() == [False, False, False, False, True]
    naive = pd.Series(pd.to_datetime(["2020-01-01"]))
    assert parse_timestamps(naive)[0].iloc[0] == pd.Timestamp("2020-01-01", tz="UTC")


def test_as_id_strings():
    assert as_id_strings(pd.Series([1.0, None, 3.0])).tolist()[::2] == ["1", "3"]
    assert as_id_strings(pd.Series([" a ", "b"])).tolist() == ["a", "b"]


def test_parse_numbers():
    values, bad = parse_numbers(pd.Series(["1", " ", "x", "2.5", "inf"]), integer=False)
    assert values[0] == 1.0 and np.isnan(values[1]) and values[3] == 2.5
    assert bad.tolist() == [False, False, True, False, True]
    _, bad = parse_numbers(pd.Series(["1", "2.5"]), integer=True)
    assert bad.tolist() == [False, True]
