"""Beyond-accuracy metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from cinerec.evaluation import beyond
from cinerec.evaluation.beyond import (
    average_popularity,
    catalog_coverage,
    head_items,
    intra_list_diversity,
    novelty,
    popular_share,
)

# genres: item0 {action, comedy}, item1 {comedy}, item2 {drama}, item3 {} (unknown)
GENRES = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_coverage() -> None:
    ranked = np.array([[0, 1], [1, 2], [-1, -1]])
    assert catalog_coverage(ranked, 5, 2) == pytest.approx(3 / 5)
    assert catalog_coverage(ranked, 5, 1) == pytest.approx(2 / 5)


@pytest.mark.parametrize("force_sparse", [False, True])
def test_jaccard_diversity(force_sparse: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if force_sparse:
        monkeypatch.setattr(beyond, "_DENSE_CELLS", 0)
    ranked = np.array([[0, 1, 2], [0, 3, -1], [0, 1, 3], [2, -1, -1]])
    for feats in (GENRES, sp.csr_matrix(GENRES)):
        d = intra_list_diversity(ranked, feats, 3, metric="jaccard")
        # pairs (0,1): 1 - 1/2; (0,2): 1 - 0/3; (1,2): 1 - 0/2
        assert d[0] == pytest.approx((0.5 + 1 + 1) / 3)
        assert math.isnan(d[1])  # item 3 has no genres: no comparable pair left
        assert d[2] == pytest.approx(0.5)
        assert math.isnan(d[3])
        assert intra_list_diversity(ranked, feats, 2)[0] == pytest.approx(0.5)


@pytest.mark.parametrize("force_sparse", [False, True])
def test_cosine_diversity(force_sparse: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if force_sparse:
        monkeypatch.setattr(beyond, "_DENSE_CELLS", 0)
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    ranked = np.array([[0, 1, 2]])
    expected = (1.0 + 2 * (1 - 1 / math.sqrt(2))) / 3
    for feats in (emb, sp.csr_matrix(emb)):
        assert intra_list_diversity(ranked, feats, 3, "cosine")[0] == pytest.approx(expected)
    with pytest.raises(ValueError):
        intra_list_diversity(ranked, emb, 3, "euclid")  # type: ignore[arg-type]


def test_novelty_arp_and_popular_share() -> None:
    popularity = np.array([4.0, 2.0, 1.0, 0.0])
    ranked = np.array([[0, 1], [2, 3], [-1, -1]])
    nov = novelty(ranked, popularity, n_users=4, k=2)
    assert nov[0] == pytest.approx((0 + 1) / 2)  # -log2(4/4), -log2(2/4)
    assert nov[1] == pytest.approx((2 + 2) / 2)  # unseen item floored at one user
    assert math.isnan(nov[2])
    arp = average_popularity(ranked, popularity, 2)
    assert arp[:2].tolist() == pytest.approx([3.0, 0.5])
    pop10 = np.array([9, 1, 8, 2, 3, 4, 5, 6, 7, 0], dtype=float)
    assert np.flatnonzero(head_items(pop10)).tolist() == [0, 2]  # ceil(0.2 * 10) = 2
    share = popular_share(np.array([[0, 1, 2, 3], [4, 5, -1, -1]]), pop10, 4)
    assert share.tolist() == pytest.approx([0.5, 0.0])
