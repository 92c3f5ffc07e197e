"""Data layer: schemas, loaders, the dataset container, derived signals and splits."""
