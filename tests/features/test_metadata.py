"""Metadata blocks: vocabularies, top-N capping, ordinal buckets, per-block normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.features.metadata import describes_items, metadata_features


def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["m1", "m2", "s1", "x"],
            "type": ["movie", "movie", "series", None],
            "genres": [["Drama", "Crime", "Thriller"], ["Comedy"], ["Drama"], None],
            "country": [["France"], ["France", "Chad"], ["Japan"], []],
            "year": pd.array([1994, 2003, 2019, None], dtype="Int32"),
            "min_age": pd.array([18, 0, 13, None], dtype="Int32"),
            "duration_min": pd.array([95.0, 185.0, None, None], dtype="Float32"),
            "seasons": pd.array([None, None, 5, None], dtype="Int32"),
        }
    )


def row(features, i: int) -> dict[str, float]:
    matrix = features.matrix.tocsr()
    values = matrix[i]
    return {
        features.names[j]: round(float(v), 4)
        for j, v in zip(values.indices, values.data, strict=True)
    }


def test_blocks_and_values() -> None:
    features = metadata_features(catalog(), top_countries=1)
    assert features.matrix.shape == (4, len(features.names))
    assert features.matrix.dtype == np.float32
    assert list(features.blocks) == ["genres", "type", "country", "decade", "age", "length"]
    m1 = row(features, 0)
    assert m1["genres:Drama"] == pytest.approx(1 / np.sqrt(3), abs=1e-4)
    assert m1["type:movie"] == 1.0
    assert m1["country:France"] == 1.0  # the one kept country
    assert row(features, 1)["country:other"] == pytest.approx(1 / np.sqrt(2), abs=1e-4)
    assert row(features, 2)["country:other"] == 1.0
    # Ordinal decade: the neighbours get half the weight of the decade itself.
    assert m1["decade:1990s"] == pytest.approx(2 * m1["decade:2000s"])
    assert "decade:2010s" not in m1
    assert set(k for k in m1 if k.startswith("age:")) == {"age:16+", "age:18+"}
    assert m1["length:movie:90-120min"] > m1["length:movie:60-90min"]
    assert "length:movie:150min+" in row(features, 1)
    series = row(features, 2)
    assert series["length:series:4-6seasons"] > series["length:series:7+seasons"]
    assert not any(k.startswith("length:movie") for k in series)
    assert row(features, 3) == {}  # nothing known: an all-zero row


def test_each_block_has_unit_norm() -> None:
    features = metadata_features(catalog())
    dense = features.matrix.toarray()
    for name, columns in features.blocks.items():
        norms = np.linalg.norm(dense[:3, columns], axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(dense[3], 0.0)


def test_missing_columns_and_chosen_blocks() -> None:
    thin = catalog()[["item_id", "genres", "year"]]
    features = metadata_features(thin)
    assert list(features.blocks) == ["genres", "decade"]
    only = metadata_features(catalog(), blocks=["type"])
    assert only.names == ["type:movie", "type:series"]
    empty = metadata_features(catalog().iloc[:0])
    assert empty.matrix.shape[0] == 0
    with pytest.raises(ValueError, match="unknown"):
        metadata_features(catalog(), blocks=["mood"])


def test_describes_items_needs_one_real_value() -> None:
    assert describes_items(catalog())
    ids = pd.DataFrame({"item_id": ["a", "b"]})
    assert not describes_items(ids)
    blank = ids.assign(title=["", "  "], genres=[[], None], year=pd.array([None, None], "Int32"))
    assert not describes_items(blank)
    assert describes_items(blank.assign(year=pd.array([None, 1999], "Int32")))
    assert describes_items(ids.assign(genres=[[], ["Drama"]]))
