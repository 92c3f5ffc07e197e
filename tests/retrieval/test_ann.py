"""VectorIndex: exact and approximate inner-product top-k with exclusions and filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cinerec.errors import ModelError
from cinerec.retrieval import VectorIndex, exact_top_k
from cinerec.retrieval.ann import AUTO_FLAT_MAX, AUTO_FLAT_MAX_VALUES


def clustered(n: int, d: int = 16, n_clusters: int = 8, seed: int = 0) -> np.ndarray:
    """Gaussian clusters with varying norms, like small ALS item factors."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, d))
    x = centers[rng.integers(0, n_clusters, n)] + 0.5 * rng.standard_normal((n, d))
    return (x * rng.lognormal(0.0, 0.3, (n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def items() -> np.ndarray:
    return clustered(2000)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(40, seed=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([np.intersect1d(f, t).size / t.size for f, t in zip(found, truth, strict=True)])
    )


def test_flat_equals_exact(items: np.ndarray, queries: np.ndarray) -> None:
    index = VectorIndex.build(items, kind="flat")
    ids, scores = index.search(queries, 10)
    truth_ids, truth_scores = exact_top_k(items, queries, 10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert ids.shape == scores.shape == (len(queries), 10)
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-5, atol=1e-5)
    assert recall(ids, truth_ids) == 1.0
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_exact_top_k_matches_brute_force(items: np.ndarray, queries: np.ndarray) -> None:
    ids, scores = exact_top_k(items, queries, 5, chunk_size=7)
    full = queries.astype(np.float64) @ items.T.astype(np.float64)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), rtol=1e-4)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("hnsw", {}),
        ("hnsw", {"mips": "l2"}),
        ("ivf", {"nlist": 32, "nprobe": 8}),
    ],
)
def test_approximate_recall(
    items: np.ndarray, queries: np.ndarray, kind: str, params: dict[str, object]
) -> None:
    index = VectorIndex.build(items, kind=kind, **params)
    ids, scores = index.search(queries, 10)
    truth, _ = exact_top_k(items, queries, 10)
    assert recall(ids, truth) >= 0.9
    # Scores are the true inner products of the returned ids, whatever the index.
    expected = np.einsum("qd,qkd->qk", queries, items[ids])
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_exclude_still_returns_k(items: np.ndarray, queries: np.ndarray, kind: str) -> None:
    index = VectorIndex.build(items, kind=kind)
    truth, _ = exact_top_k(items, queries, 400)
    rng = np.random.default_rng(3)
    # Row 0 drops its whole top-300 (forces the larger fallback search), others a few.
    exclude = [truth[0, :300]] + [rng.choice(truth[i, :20], 5) for i in range(1, len(queries))]
    ids, scores = index.search(queries, 10, exclude=exclude)
    assert (ids >= 0).all() and np.isfinite(scores).all()
    for row, banned in zip(ids, exclude, strict=True):
        assert not np.isin(row, banned).any()
        assert len(set(row)) == 10
    if kind == "flat":  # exact: the best items that are not excluded
        assert list(ids[0]) == list(truth[0, 300:310])


def test_exclude_accepts_sparse_rows(items: np.ndarray, queries: np.ndarray) -> None:
    index = VectorIndex.build(items, kind="flat")
    truth, _ = exact_top_k(items, queries, 10)
    rows = np.repeat(np.arange(len(queries)), 3)
    seen = sp.csr_matrix(
        (np.ones(rows.size), (rows, truth[:, :3].ravel())), shape=(len(queries), len(items))
    )
    ids, _ = index.search(queries, 10, exclude=seen)
    np.testing.assert_array_equal(ids[:, :7], truth[:, 3:])
    with pytest.raises(ModelError, match="rows"):
        index.search(queries, 10, exclude=seen[:5])


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_allowed_subset(items: np.ndarray, queries: np.ndarray, kind: str) -> None:
    index = VectorIndex.build(items, kind=kind)
    allowed = np.arange(0, len(items), 3)
    ids, _ = index.search(queries, 10, allowed=allowed, exclude=[allowed[:2]] * len(queries))
    assert (ids >= 0).all()
    assert np.isin(ids, allowed).all()
    assert not np.isin(ids, allowed[:2]).any()
    if kind != "hnsw":  # small subsets are searched exactly (IVF: from the source vectors)
        truth, _ = exact_top_k(items[allowed], queries, 12)
        expected = [[i for i in allowed[row] if i not in allowed[:2]][:10] for row in truth]
        np.testing.assert_array_equal(ids, expected)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.parametrize("share", [0.9, 0.3])
def test_eligible_mask(items: np.ndarray, queries: np.ndarray, kind: str, share: float) -> None:
    """A request's bool eligibility mask: only eligible items come back, k of them, and
    exactly the eligible top-k on an exact index (dense masks go through a bitmap)."""
    index = VectorIndex.build(items, kind=kind)
    mask = np.random.default_rng(5).random(len(items)) < share
    ids, scores = index.search(queries, 10, eligible=mask)
    assert (ids >= 0).all() and mask[ids].all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    truth, _ = exact_top_k(items[mask], queries, 10)
    if kind == "ivf":  # probing every cell makes IVF exact: the selector must match
        ids, _ = index.search(queries, 10, eligible=mask, nprobe=index.params["nlist"])
    np.testing.assert_array_equal(ids, np.flatnonzero(mask)[truth])
    with pytest.raises(ModelError, match="mask"):
        index.search(queries, 10, eligible=mask[:-1])
    with pytest.raises(ModelError, match="not both"):
        index.search(queries, 10, eligible=mask, allowed=[1, 2])


def test_padding_when_too_few_eligible(items: np.ndarray, queries: np.ndarray) -> None:
    index = VectorIndex.build(items, kind="flat")
    ids, scores = index.search(queries[:2], 10, allowed=[5, 6, 7], exclude=[[6], []])
    assert sorted(ids[0, :2]) == [5, 7] and (ids[0, 2:] == -1).all()
    assert np.isneginf(scores[0, 2:]).all() and np.isfinite(scores[0, :2]).all()
    assert sorted(ids[1, :3]) == [5, 6, 7] and (ids[1, 3:] == -1).all()
    small = VectorIndex.build(items[:4], kind="flat")
    ids, scores = small.search(queries[:1], 6)
    assert sorted(ids[0, :4]) == [0, 1, 2, 3] and list(ids[0, 4:]) == [-1, -1]
    assert np.isneginf(scores[0, 4:]).all()


@pytest.mark.parametrize(
    ("kind", "params"),
    [("flat", {}), ("hnsw", {}), ("hnsw", {"mips": "l2"}), ("ivf", {"nlist": 16})],
)
def test_save_load_round_trip(
    tmp_path: Path, items: np.ndarray, queries: np.ndarray, kind: str, params: dict[str, object]
) -> None:
    index = VectorIndex.build(items, kind=kind, metric="cosine", **params)
    path = tmp_path / "sub" / "items.faiss"
    index.save(path)
    assert path.is_file() and path.with_name("items.faiss.json").is_file()
    loaded = VectorIndex.load(path)
    assert (loaded.kind, loaded.metric, loaded.n, loaded.d) == (kind, "cosine", 2000, 16)
    assert loaded.params == index.params
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_rejects_mismatched_sidecar(tmp_path: Path, items: np.ndarray) -> None:
    VectorIndex.build(items, kind="flat").save(tmp_path / "a.faiss")
    VectorIndex.build(items[:10], kind="flat").save(tmp_path / "b.faiss")
    (tmp_path / "a.faiss.json").write_text((tmp_path / "b.faiss.json").read_text())
    with pytest.raises(ModelError, match="sidecar"):
        VectorIndex.load(tmp_path / "a.faiss")
    with pytest.raises(ModelError, match="cannot load"):
        VectorIndex.load(tmp_path / "missing.faiss")


def test_auto_picks_flat_for_small_catalogs(items: np.ndarray) -> None:
    assert VectorIndex.build(items).kind == "flat"
    assert AUTO_FLAT_MAX >= 10_000


def test_auto_picks_ivf_when_an_exact_scan_would_be_wide() -> None:
    """Few items but wide vectors (sentence embeddings) scan as much memory per query as a
    big catalog: auto builds an IVF index, which still finds nearly all true neighbours."""
    points = clustered(12_030, d=384)
    wide, queries = points[:12_000], points[12_000:]
    assert AUTO_FLAT_MAX_VALUES < 12_000 * 384
    index = VectorIndex.build(wide)
    assert index.kind == "ivf"
    truth, _ = exact_top_k(wide, queries, 100)
    found, _ = index.search(queries, 100)
    overlap = np.mean([len(np.intersect1d(t, f)) / 100 for t, f in zip(truth, found, strict=True)])
    assert overlap >= 0.9


def test_cosine_metric_ignores_norms(items: np.ndarray, queries: np.ndarray) -> None:
    index = VectorIndex.build(items, kind="flat", metric="cosine")
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    truth, _ = exact_top_k(unit, queries, 10)
    np.testing.assert_array_equal(index.search(queries * 7.0, 10)[0], truth)


def test_bad_inputs_raise_clear_errors(items: np.ndarray, queries: np.ndarray) -> None:
    with pytest.raises(ModelError, match="2-d"):
        VectorIndex.build(items[0])
    with pytest.raises(ModelError, match="float"):
        VectorIndex.build(items.astype(np.int64))
    with pytest.raises(ModelError, match="NaN"):
        VectorIndex.build(np.full((3, 2), np.nan, dtype=np.float32))
    with pytest.raises(ModelError, match="kind"):
        VectorIndex.build(items, kind="lsh")
    with pytest.raises(ModelError, match="metric"):
        VectorIndex.build(items, metric="l1")
    with pytest.raises(ModelError, match="parameters"):
        VectorIndex.build(items, kind="flat", nprobe=3)
    with pytest.raises(ModelError, match="empty"):
        VectorIndex.build(np.empty((0, 4), dtype=np.float32))
    index = VectorIndex.build(items, kind="flat")
    with pytest.raises(ModelError, match="dimension"):
        index.search(queries[:, :5], 10)
    with pytest.raises(ModelError, match="2-d"):
        index.search(queries[0], 10)
    with pytest.raises(ModelError, match="k must be positive"):
        index.search(queries, 0)
    with pytest.raises(ModelError, match="allowed"):
        index.search(queries, 10, allowed=[len(items)])


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_small_allowed_set_is_searched_exactly(
    items: np.ndarray, queries: np.ndarray, kind: str
) -> None:
    index = VectorIndex.build(items, kind=kind, metric="cosine")
    allowed = np.array([3, 50, 51, 700, 1999])
    ids, scores = index.search(queries, 4, allowed=allowed, exclude=[[50]] * len(queries))
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    keep = np.array([3, 51, 700, 1999])
    truth, truth_scores = exact_top_k(
        unit[keep], queries / np.linalg.norm(queries, axis=1)[:, None], 4
    )
    np.testing.assert_array_equal(ids, keep[truth])
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-5, atol=1e-5)
    empty_ids, empty_scores = index.search(queries[:1], 3, allowed=np.array([], dtype=np.int64))
    assert (empty_ids == -1).all() and np.isneginf(empty_scores).all()
