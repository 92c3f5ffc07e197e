import numpy as np
import pandas as pd

from cinerec.data.matrix import IdIndex, InteractionMatrix


def _interactions():
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u1"],
            "item_id": ["a", "b", "a", "c", "a"],
            "event": ["rating", "rating", "like", "skip", "rating"],
            "value": [2.0, 5.0, 1.0, 1.0, 4.0],
            "watch_seconds": [None] * 5,
            "timestamp": pd.to_datetime([5, 1, 3, 4, 2], unit="s", utc=True),
        }
    )


def test_id_index_round_trip_and_unknown_ids():
    index = IdIndex.from_ids(["b", "a", "b", "c"])
    assert list(index.ids) == ["b", "a", "c"]
    np.testing.assert_array_equal(index.lookup(["c", "zz", "b"]), [2, -1, 0])


def test_matrix_reduces_duplicates_by_max_and_drops_skips():
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"]})
    data = InteractionMatrix.build(_interactions(), items=items)
    assert data.matrix.shape == (2, 4)  # catalog item "d" has a column without interactions
    dense = data.matrix.toarray()
    u1, u2 = data.users.lookup(["u1", "u2"])
    assert dense[u1, 0] == np.float32(0.8)  # max of 2/5 and 4/5
    assert dense[u1, 1] == np.float32(1.0)
    assert dense[u2, 0] == np.float32(1.0)
    assert dense[u2, 2] == 0  # a skip is not a positive interaction
    assert list(data.events["timestamp"]) == sorted(data.events["timestamp"])
    np.testing.assert_array_equal(data.item_popularity(), [2, 1, 0, 0])


def test_encode_like_keeps_indices_and_drops_unknown():
    train = InteractionMatrix.build(_interactions())
    test = pd.DataFrame(
        {
            "user_id": ["u2", "new"],
            "item_id": ["b", "a"],
            "event": ["rating", "rating"],
            "value": [3.0, 3.0],
            "watch_seconds": [None, None],
            "timestamp": pd.to_datetime([9, 9], unit="s", utc=True),
        }
    )
    encoded = train.encode_like(test)
    assert encoded.matrix.shape == train.matrix.shape
    assert encoded.matrix.nnz == 1
    row, col = encoded.matrix.nonzero()
    assert train.users.ids[row[0]] == "u2"
    assert train.items.ids[col[0]] == "b"


def test_skips_and_catalog_follow_the_indices():
    items = pd.DataFrame({"item_id": ["c", "a", "b"], "title": ["C", "A", "B"]})
    data = InteractionMatrix.build(
        _interactions(), items=items, item_index=IdIndex.from_ids(["a", "b", "c", "d"])
    )
    assert data.catalog["item_id"].tolist() == ["a", "b", "c", "d"]
    assert data.catalog["title"].tolist()[:3] == ["A", "B", "C"]
    assert pd.isna(data.catalog["title"].iloc[3])
    u2 = data.users.lookup(["u2"])[0]
    assert data.skips.toarray()[u2].tolist() == [0, 0, 1, 0]
    assert data.skips.sum() == 1
