"""Item and user features shared by models, rankers and beyond-accuracy metrics."""
