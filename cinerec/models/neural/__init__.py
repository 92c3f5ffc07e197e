"""Neural recommenders' machinery: the shared training loop and its helpers, sequence
batching (:mod:`.sequences`) and the SASRec network (:mod:`.sasrec_net`)."""

from cinerec.models.neural.loop import (
    EpochLog,
    TrainConfig,
    TrainHistory,
    leave_last_validation,
    load_weights,
    ndcg_at_10,
    save_weights,
    seed_everything,
    train_loop,
)

__all__ = [
    "EpochLog",
    "TrainConfig",
    "TrainHistory",
    "leave_last_validation",
    "load_weights",
    "ndcg_at_10",
    "save_weights",
    "seed_everything",
    "train_loop",
]
