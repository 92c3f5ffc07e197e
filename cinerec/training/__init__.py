"""Training: hyperparameter search on validation, model bundles, the train job."""
