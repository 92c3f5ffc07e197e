"""Neural recommenders' shared machinery: the training loop and its helpers."""

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
