"""Editor picks as operator state: durable in the event-log database (SQLite, PostgreSQL),
applied to every version served — across a registry hot reload and a real restart."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from cinerec.errors import CinerecError
from cinerec.serving.app import create_app
from cinerec.serving.eventlog import EventLog
from cinerec.serving.picks import BUNDLE_TAG, MAX_PICKS, EditorPicks, picks_tag
from cinerec.serving.registry import ModelRegistry
from tests.services import POSTGRES_URL, postgres_or_skip
from tests.serving.conftest import ADMIN_KEY, make_settings

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture()
def postgres_db() -> Iterator[str]:
    """A throwaway PostgreSQL database (the operator state table is not shared with other
    tests), dropped afterwards."""
    base = postgres_or_skip(POSTGRES_URL)
    name = f"cinerec_picks_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_db")


def test_picks_survive_a_restart_and_replicas_follow_a_change(database_url: str) -> None:
    with EventLog(database_url) as first_log, EventLog(database_url) as second_log:
        first = EditorPicks(first_log, poll_s=0)
        assert (first.current, first.tag) == (None, BUNDLE_TAG)  # the bundle's own
        first.replace(["i1", "i2"])
        restarted = EditorPicks(second_log, poll_s=0)  # a new process over the same database
        assert restarted.current == ("i1", "i2") and restarted.tag == first.tag != BUNDLE_TAG
        first.replace(["i3"])
        assert restarted.current == ("i1", "i2")  # until it re-reads...
        assert restarted.refresh() is True and restarted.current == ("i3",)
        assert restarted.refresh() is False
        first.reset()
        assert restarted.refresh() is True and restarted.current is None
        polling = EditorPicks(second_log, poll_s=0.05)
        polling.start()
        try:
            first.replace(["i4", "i5"])
            deadline = time.monotonic() + 5
            while polling.current != ("i4", "i5"):
                assert time.monotonic() < deadline, "the poll thread did not re-read"
                time.sleep(0.02)
        finally:
            polling.stop()
        assert first.replace([]) == () and EditorPicks(first_log, poll_s=0).current == ()


def test_tags_name_the_picks_in_order() -> None:
    assert picks_tag(None) == BUNDLE_TAG
    tags = {picks_tag(p) for p in [(), ("a",), ("a", "b"), ("b", "a")]}
    assert len(tags) == 4 and BUNDLE_TAG not in tags
    assert picks_tag(["a", "b"]) == picks_tag(("a", "b"))


def test_bad_picks_are_refused_with_a_reason(tmp_path: Path) -> None:
    with EventLog(f"sqlite:///{tmp_path / 'e.db'}") as events:
        picks = EditorPicks(events, poll_s=0)
        with pytest.raises(CinerecError, match="at most"):
            picks.replace([f"i{n}" for n in range(MAX_PICKS + 1)])
        with events.transaction("corrupt") as conn:
            conn.execute(
                sa.insert(picks.table).values(key="editor_picks", value='{"a": 1}', updated_at=0)
            )
        with pytest.raises(CinerecError, match="not a list of item ids"):
            EditorPicks(events, poll_s=0)


def editor_items(client: TestClient) -> set[str]:
    """The titles the editor source put in a new visitor's full list."""
    answer = client.get("/v1/recommendations", params={"k": 100})
    assert answer.status_code == 200, answer.text
    return {i["item_id"] for i in answer.json()["items"] if "editor" in i["sources"]}


def two_versions(bundle_folder: Path, root: Path) -> ModelRegistry:
    """A registry holding the bundle as v1 (promoted) and a re-dated copy as v2."""
    registry = ModelRegistry(root / "registry", cache_dir=root / "cache")
    registry.publish(bundle_folder, version="v1")
    copy = root / "v2"
    shutil.copytree(bundle_folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["created_at"] = "2030-01-01T00:00:00+00:00"  # not checksummed: a new version
    (copy / "manifest.json").write_text(json.dumps(manifest))
    registry.publish(copy, version="v2")
    registry.promote("v1")
    return registry


def test_picks_hold_across_a_hot_reload_and_a_restart(
    bundle_folder: Path, tmp_path: Path, database_url: str
) -> None:
    registry = two_versions(bundle_folder, tmp_path)
    settings = make_settings(
        bundle_folder, tmp_path, registry=registry.root, registry_poll_s=3600,
        database_url=database_url,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert editor_items(client) == set()  # the bundle has no picks of its own
        put = client.put("/v1/admin/editor-picks", json={"item_ids": ["cold1", "cold3"]},
                         headers=ADMIN)  # fmt: skip
        assert put.status_code == 200 and put.json()["source"] == "operator"
        assert editor_items(client) == {"cold1", "cold3"}
        first = client.get("/v1/recommendations", params={"user_id": "u1", "k": 5}).json()
        promoted = client.post("/v1/admin/promote", json={"version": "v2"}, headers=ADMIN)
        assert promoted.status_code == 200 and promoted.json()["changed"] is True
        assert editor_items(client) == {"cold1", "cold3"}  # the new version serves them too
        after = client.get("/v1/recommendations", params={"user_id": "u1", "k": 5}).json()
        assert after["model_version"] != first["model_version"] and not after["cached"]
        # changing the picks makes the answers cached with the old ones unreachable
        assert client.get("/v1/recommendations", params={"user_id": "u1", "k": 5}).json()["cached"]
        client.put("/v1/admin/editor-picks", json={"item_ids": ["cold2"]}, headers=ADMIN)
        changed = client.get("/v1/recommendations", params={"user_id": "u1", "k": 5}).json()
        assert changed["cached"] is False
    with TestClient(create_app(settings)) as client:  # a real restart: new app, same database
        state = client.get("/v1/admin/editor-picks", headers=ADMIN).json()
        assert state == {"editor_picks": 1, "item_ids": ["cold2"], "source": "operator"}
        assert editor_items(client) == {"cold2"}
        assert client.get("/v1/admin/versions", headers=ADMIN).json()["serving"] == "v2"
        reset = client.delete("/v1/admin/editor-picks", headers=ADMIN)
        assert reset.status_code == 200 and reset.json()["source"] == "bundle"
        assert editor_items(client) == set()
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/admin/editor-picks", headers=ADMIN).json()["source"] == "bundle"
