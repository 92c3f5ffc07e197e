"""A small trained bundle and an API client over it (embedded defaults: SQLite, in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cinerec.serving.app import create_app
from cinerec.serving.settings import Settings
from cinerec.training.train import train_bundle
from tests.pipeline.conftest import rich_dataset
from tests.services import ThrowawayRedis, throwaway_redis

ADMIN_KEY = "test-admin-key-123"


#: Users with a stored parental limit (the users table's max_age_rating) in the bundle:
#: one with a history, one registered without any event yet.
CHILDREN = {"u50": 13, "kid0": 7}


@pytest.fixture(scope="session")
def bundle_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serving") / "bundle"
    dataset = rich_dataset(seed=1)
    dataset.users = pd.DataFrame(
        {"user_id": [*CHILDREN, "u1"], "max_age_rating": [*CHILDREN.values(), None]}
    )
    train_bundle(
        dataset,
        folder,
        model_names=("pop", "trending", "itemknn", "ease", "als"),
        validation_spec="leave-last:3",
        progress=False,
    )
    return folder


def make_settings(folder: Path, tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bundle": folder,
        "database_url": f"sqlite:///{tmp / 'events.db'}",
        "redis_url": None,
        "admin_api_key": ADMIN_KEY,
        "pipeline_processes": 0,  # the default (one per core) is tested on its own
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A throwaway redis-server that the test may kill, pause and restart."""
    yield from throwaway_redis(tmp_path)


@pytest.fixture()
def client(bundle_folder: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(bundle_folder, tmp_path))
    with TestClient(app) as test_client:
        yield test_client
