"""HTTP routes: the public /v1 API, operations endpoints and the admin API.

Declarations only: each route validates its input, takes the request path it serves as a
dependency (:mod:`cinerec.serving.deps`) and hands over; the work is in those paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from starlette.concurrency import run_in_threadpool

from cinerec.serving import schemas
from cinerec.serving.answers import Answers
from cinerec.serving.deps import (
    AdminDep,
    AdminKey,
    AnswersDep,
    FeedbackDep,
    LookupsDep,
    ServicesDep,
    SettingsDep,
)


class JSONBytes(Response):
    """A body already serialised to JSON (the route's ``response_model`` documents it)."""

    media_type = "application/json"


Names = Annotated[list[str], Query(max_length=50)]

api = APIRouter(prefix="/v1", tags=["recommendations"])
ops = APIRouter(tags=["operations"])
admin = APIRouter(prefix="/v1/admin", tags=["admin"])


@api.get("/recommendations", response_model=schemas.RecommendationResponse)
async def recommendations_get(
    answers: AnswersDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    session_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    device: schemas.Device | None = None,
    country: Annotated[str | None, Query(max_length=100)] = None,
    time: datetime | None = None,
    max_age_rating: Annotated[str | None, Query(max_length=20)] = None,
    languages: Names = [],  # noqa: B006 - FastAPI copies defaults
    countries: Names = [],  # noqa: B006
    genres: Names = [],  # noqa: B006
    types: Annotated[list[schemas.ItemType], Query(max_length=2)] = [],  # noqa: B006
    year_min: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    year_max: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    exclude: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
) -> Response:
    """Top-k for a user (or a new visitor), with scores, reasons and recall sources."""
    age: int | str | None = max_age_rating
    if max_age_rating is not None and max_age_rating.isdigit():
        age = int(max_age_rating)
    body = schemas.RecommendationRequest(
        user_id=user_id,
        session_id=session_id,
        k=k,
        context=schemas.ContextIn(device=device, country=country, time=time),
        filters=schemas.FiltersIn(
            max_age_rating=age,
            languages=languages,
            countries=countries,
            genres=genres,
            types=types,
            year_min=year_min,
            year_max=year_max,
        ),
        exclude=exclude,
    )
    return JSONBytes(await answer(answers, body))


@api.post("/recommendations", response_model=schemas.RecommendationResponse)
async def recommendations_post(
    body: schemas.RecommendationRequest, answers: AnswersDep
) -> Response:
    """Top-k with the full request body (context, filters, preferences, exclusions)."""
    return JSONBytes(await answer(answers, body))


async def answer(answers: Answers, body: schemas.RecommendationRequest) -> bytes:
    """An in-process cache hit is answered on the event loop; everything else (the
    pipeline, Redis round trips) runs in a worker thread."""
    if not answers.cache.in_process:
        return await run_in_threadpool(answers.recommend_json, body)
    key = answers.cache_key(body)
    hit, generation = answers.cached_json(body, key)
    if hit is not None:
        return hit
    return await run_in_threadpool(answers.recommend_json, body, key, generation)


@api.post("/feedback", response_model=schemas.FeedbackAck, status_code=status.HTTP_202_ACCEPTED)
def feedback(event: schemas.FeedbackIn, intake: FeedbackDep) -> Response:
    """Store one event durably (202 once committed); the next answer reflects it."""
    ack = intake.accept([event])  # serialised here: the hottest write route skips
    return JSONBytes(ack.model_dump_json().encode(), status.HTTP_202_ACCEPTED)  # re-validation


@api.post(
    "/feedback/batch", response_model=schemas.FeedbackAck, status_code=status.HTTP_202_ACCEPTED
)
def feedback_batch(
    batch: schemas.FeedbackBatch, intake: FeedbackDep, settings: SettingsDep
) -> schemas.FeedbackAck:
    """Store up to ``max_batch`` events in one transaction."""
    if len(batch.events) > settings.max_batch:
        raise HTTPException(413, f"at most {settings.max_batch} events per batch")
    return intake.accept(batch.events)


@api.get("/items/{item_id}/similar", response_model=list[schemas.SimilarItem])
def similar(
    item_id: str, lookups: LookupsDep, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[schemas.SimilarItem]:
    """More like this — also for titles nobody has watched."""
    return lookups.similar(item_id, k)


@api.get("/users/{user_id}/history", response_model=list[schemas.HistoryEvent])
def history(
    user_id: str, lookups: LookupsDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[schemas.HistoryEvent]:
    """The user's events: from the training data and received online since."""
    return lookups.history(user_id, limit)


@ops.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers (on the event loop: no worker thread needed)."""
    return {"status": "ok"}


@ops.get("/ready")
def ready(services: ServicesDep, response: Response) -> dict:
    """Readiness: a model is loaded and the event log answers."""
    report = services.ready()
    if not report["ready"]:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return report


@ops.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics."""
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")


@admin.post("/reload")
def reload(_: AdminKey, operator: AdminDep) -> dict:
    """Load the promoted (or re-written) bundle now; a broken one is refused."""
    return operator.reload()


@admin.post("/promote")
def promote(body: schemas.Promote, _: AdminKey, operator: AdminDep) -> dict:
    """Promote a registry version and switch to it."""
    if operator.registry is None:
        raise HTTPException(409, "no model registry configured (CINEREC_REGISTRY)")
    operator.registry.promote(body.version)
    return operator.reload()


@admin.get("/versions")
def versions(_: AdminKey, operator: AdminDep) -> dict:
    """The registry's versions and the one served."""
    return operator.versions()


@admin.put("/editor-picks")
def editor_picks(body: schemas.EditorPicks, _: AdminKey, operator: AdminDep) -> dict:
    """Replace the editor picks (a recall source; reasons say "Editor's pick"), stored
    durably beside the event log for every version served, across restarts."""
    return operator.set_editor_picks(body.item_ids)


@admin.get("/editor-picks")
def editor_picks_get(_: AdminKey, operator: AdminDep) -> dict:
    """The editor picks in force: the operator's, or the served bundle's own."""
    return operator.editor_picks()


@admin.delete("/editor-picks")
def editor_picks_reset(_: AdminKey, operator: AdminDep) -> dict:
    """Forget the operator's picks: the served bundle's own apply again."""
    return operator.set_editor_picks(None)
