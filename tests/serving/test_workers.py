"""Pipeline worker processes: the same answers as in process, read-after-write through the
API, a killed worker replaced without a failed request, new versions loaded beside."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Constraints, Context, RecentEvent, Request
from cinerec.serving.app import create_app
from cinerec.serving.holders import load_for_serving
from cinerec.serving.service import Services
from cinerec.serving.workers import (
    PipelineRunner,
    PipelineWorkers,
    available_memory,
    default_processes,
    process_rss,
    usable_cores,
)
from cinerec.training.train import train_bundle
from tests.pipeline.conftest import rich_dataset
from tests.serving.conftest import ADMIN_KEY, make_settings
from tests.serving.server import running_server


@pytest.fixture(scope="module")
def recommender(bundle_folder: Path) -> Recommender:
    return load_for_serving(bundle_folder)


@pytest.fixture(scope="module")
def workers(bundle_folder: Path, recommender: Recommender) -> Iterator[PipelineWorkers]:
    pool = PipelineWorkers(bundle_folder, 2, version=recommender.model_version)
    yield pool
    pool.close()


@pytest.fixture()
def worker_client(bundle_folder: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(bundle_folder, tmp_path, pipeline_processes=1))
    with TestClient(app) as test_client:
        yield test_client


def test_workers_answer_exactly_as_the_api_process(
    workers: PipelineWorkers, recommender: Recommender
) -> None:
    assert len(workers.pids()) == 2 and os.getpid() not in workers.pids()
    item = str(recommender.items.ids[3])
    requests = [
        Request(user_id="u3", k=10),
        Request(user_id="u5", k=5, constraints=Constraints(max_min_age=13)),
        Request(
            user_id=None,
            k=8,
            recent_events=(RecentEvent(item, 1.7e9, 1.0, False),),
            context=Context(device="tv", country="India"),
        ),
    ]
    for request in requests:
        here = recommender.recommend(request)
        there = workers.recommend(request)
        assert there is not None
        assert there.item_ids == here.item_ids
        np.testing.assert_allclose(
            [i.score for i in there.items], [i.score for i in here.items], rtol=1e-6
        )
        assert [i.reason.text for i in there.items] == [i.reason.text for i in here.items]
    with_picks = Request(user_id=None, k=10, editor_picks=(item,))  # the API's editor picks
    picked = workers.recommend(with_picks)
    assert picked is not None and picked.per_source.get("editor") == 1
    assert picked.item_ids == recommender.recommend(with_picks).item_ids
    unpicked = workers.recommend(Request(user_id=None, k=10, editor_picks=()))
    assert unpicked is not None and not unpicked.per_source.get("editor")


def test_api_answers_from_workers_and_reads_its_own_writes(
    worker_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_here(self: Recommender, request: Request) -> None:
        raise AssertionError("the pipeline ran in the API process")

    monkeypatch.setattr(Recommender, "recommend", not_here)  # workers are other processes
    first = worker_client.get("/v1/recommendations", params={"user_id": "u7", "k": 8})
    assert first.status_code == 200, first.text
    top = first.json()["items"][0]["item_id"]
    skip = {"user_id": "u7", "item_id": top, "action": "skip"}
    assert worker_client.post("/v1/feedback", json=skip).status_code == 202
    after = worker_client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()
    assert not after["cached"]
    assert top not in [i["item_id"] for i in after["items"]]
    picks = worker_client.put(
        "/v1/admin/editor-picks", json={"item_ids": [top]}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert picks.status_code == 200
    new_visitor = worker_client.get("/v1/recommendations", params={"k": 20})
    assert new_visitor.status_code == 200
    metrics = worker_client.get("/metrics").text  # the worker's recall saw the editor pick
    assert 'cinerec_candidates_sum{source="editor"} 1.0' in metrics


def test_a_killed_worker_is_replaced_and_no_request_fails(worker_client: TestClient) -> None:
    services: Services = worker_client.app.state.services  # type: ignore[attr-defined]
    assert services.pipelines.workers is not None
    (victim,) = services.pipelines.workers.pids()
    os.kill(victim, signal.SIGKILL)
    for i in range(5):  # the broken pool is noticed; answers come from the API process
        answer = worker_client.get("/v1/recommendations", params={"user_id": f"u{i}", "k": 5})
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 120
    while services.pipelines.workers.pids() in ([], [victim]) and time.monotonic() < deadline:
        time.sleep(0.2)
    replacement = services.pipelines.workers.pids()
    assert replacement and victim not in replacement
    answer = worker_client.get("/v1/recommendations", params={"user_id": "u9", "k": 5})
    assert answer.status_code == 200


def test_a_new_version_gets_its_own_workers(
    bundle_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    train_bundle(
        rich_dataset(seed=2), other, model_names=("pop", "itemknn"),
        validation_spec="leave-last:3", progress=False,
    )  # fmt: skip
    services = create_app(make_settings(bundle_folder, tmp_path, pipeline_processes=1))
    with TestClient(services) as client:
        live: Services = client.app.state.services  # type: ignore[attr-defined]
        old = live.pipelines.workers
        assert old is not None
        fresh = load_for_serving(other)
        live.holder._value = fresh  # what a hot reload swaps in
        for _ in range(3):  # answered in process while the new workers load
            answer = client.get("/v1/recommendations", params={"user_id": "u1", "k": 5})
            assert answer.status_code == 200
            assert answer.json()["model_version"] == fresh.model_version
        deadline = time.monotonic() + 120
        while live.pipelines.workers is old and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (
            live.pipelines.workers is not old
            and live.pipelines.workers.version == fresh.model_version
        )
        assert old.pids() == []  # the old version's workers were stopped


def test_a_version_whose_workers_fail_is_answered_in_process_and_not_retried(
    bundle_folder: Path, recommender: Recommender, caplog: pytest.LogCaptureFixture
) -> None:
    runner = PipelineRunner(recommender, processes=1, concurrency=1)
    try:
        started = runner.workers
        mislabelled = load_for_serving(bundle_folder)
        mislabelled.model_version = "not-what-the-folder-holds"  # its workers will refuse it
        with caplog.at_level(logging.ERROR, logger="cinerec.serving"):
            for _ in range(2):
                answer = runner.run(mislabelled, Request(user_id="u2", k=5))
                assert answer.model_version == "not-what-the-folder-holds"  # in process
            deadline = time.monotonic() + 120
            while "did not start" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.2)
            runner.run(mislabelled, Request(user_id="u3", k=5))
            time.sleep(0.5)
        assert caplog.text.count("did not start") == 1  # tried once, not on every request
        assert runner.workers is started  # the served version's workers stay
    finally:
        runner.close()


GIB = 2**30


@pytest.mark.parametrize(
    ("cores", "available", "worker", "expected"),
    [
        (1, 64 * GIB, GIB, 0),  # one core: nothing to gain from another process
        (2, 20 * GIB, 1.3 * GIB, 2),  # this machine with the demo bundle: one per core
        (16, 16 * GIB, GIB, 5),  # memory-bound: (2n + 1) GiB within 80% of 16 GiB
        (8, 2 * GIB, 1.3 * GIB, 0),  # not even one worker fits beside a hot reload
        (8, 64 * GIB, None, 0),  # unknown cost: stay in process
    ],
)
def test_the_default_is_one_worker_per_core_as_memory_allows(
    cores: int, available: float, worker: float | None, expected: int
) -> None:
    chosen, why = default_processes(
        None if worker is None else int(worker), cores=cores, available=int(available)
    )
    assert chosen == expected and why and "\n" not in why


def test_the_machine_is_measured() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    rss, free = process_rss(), available_memory()
    assert rss is not None and 10 * 2**20 < rss < 64 * GIB
    assert free is not None and free > 0


def test_serve_picks_and_logs_the_default_and_answers_from_workers(
    bundle_folder: Path, tmp_path: Path
) -> None:
    """What a newcomer gets from ``cinerec serve``: workers on a multi-core machine, the
    choice in one line of the log."""
    env = {
        "CINEREC_BUNDLE": str(bundle_folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "CINEREC_PIPELINE_PROCESSES": None,  # the default
    }
    with running_server(env, cwd=tmp_path) as (proc, base):
        answer = httpx.get(f"{base}/v1/recommendations", params={"user_id": "u1", "k": 5})
        assert answer.status_code == 200 and len(answer.json()["items"]) == 5
        children = [
            int(pid)
            for task in Path(f"/proc/{proc.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
    # the server was killed (SIGKILL): its workers must not outlive it
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children):
        assert time.monotonic() < deadline, "orphaned pipeline workers"
        time.sleep(0.2)
    output = proc.stdout.read().decode() if proc.stdout else ""
    lines = [line for line in output.splitlines() if "pipeline worker processes:" in line]
    assert len(lines) == 1, output[-2000:]
    chosen = int(lines[0].split("pipeline worker processes:")[1].split()[0])
    assert "usable core" in lines[0]
    free = available_memory() or 0
    if usable_cores() >= 2 and free > 8 * GIB:  # the small test bundle fits many times
        assert chosen >= 1
    assert 0 <= chosen <= usable_cores()
    assert len(children) >= chosen  # the workers (beside multiprocessing's own helper)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
