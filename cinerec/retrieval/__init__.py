"""Candidate retrieval: top-k inner-product search over item vectors (faiss)."""

from cinerec.retrieval.ann import VectorIndex
from cinerec.retrieval.exact import exact_top_k

__all__ = ["VectorIndex", "exact_top_k"]
