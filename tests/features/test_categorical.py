import pandas as pd

from cinerec.data.matrix import IdIndex
from cinerec.features.categorical import multi_hot


def test_multi_hot_lists_scalars_and_missing_items():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "genres": [["Drama", "Comedy", "Drama"], [], None],
            "type": ["movie", "series", None],
        }
    )
    index = IdIndex.from_ids(["c", "a", "b", "zz"])
    genres, vocabulary = multi_hot(items, "genres", index)
    assert vocabulary == ["Comedy", "Drama"]
    assert genres.toarray().tolist() == [[0, 0], [1, 1], [0, 0], [0, 0]]
    types, type_vocabulary = multi_hot(items, "type", index)
    assert type_vocabulary == ["movie", "series"]
    assert types.toarray().tolist() == [[0, 0], [1, 0], [0, 1], [0, 0]]


def test_multi_hot_of_an_absent_column_is_all_zero_with_no_vocabulary():
    items = pd.DataFrame({"item_id": ["a", "b"]})
    matrix, vocabulary = multi_hot(items, "genres", IdIndex.from_ids(["a", "b", "zz"]))
    assert vocabulary == []
    assert matrix.shape == (3, 0) and matrix.nnz == 0
