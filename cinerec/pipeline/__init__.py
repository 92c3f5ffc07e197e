"""The recommendation pipeline, one code path offline and online.

recall (:mod:`~cinerec.pipeline.recall`) → business rules (:mod:`~cinerec.pipeline.rules`)
→ ranker (:mod:`~cinerec.pipeline.rankers`) → re-rank (:mod:`~cinerec.pipeline.rerank`)
→ reasons (:mod:`~cinerec.pipeline.explain`), driven by
:class:`~cinerec.pipeline.recommender.Recommender` — over the bundle's parts built once
(:mod:`~cinerec.pipeline.parts`), one request's stages in :mod:`~cinerec.pipeline.scoring`
and :mod:`~cinerec.pipeline.finish` — and loaded from a bundle by
:mod:`~cinerec.pipeline.persist`. Training the ranker and tuning the re-rank live above
evaluation, in :mod:`cinerec.training`.
"""
