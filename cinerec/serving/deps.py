"""What a route can ask for: the settings, the request path it serves, the admin key.

FastAPI dependencies as ``Annotated`` types (``answers: AnswersDep`` in a route's
signature), so each route names exactly the part of the service it uses and the routes
stay declarations. The parts are built once per process at startup
(:func:`cinerec.serving.app.create_app` puts :class:`Services` and :class:`Settings` on
``app.state``); the providers only hand them out.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from cinerec.serving.admin import Admin
from cinerec.serving.answers import Answers
from cinerec.serving.feedback import FeedbackIntake
from cinerec.serving.lookups import Lookups
from cinerec.serving.service import Services
from cinerec.serving.settings import Settings


def get_services(request: Request) -> Services:
    """The process's :class:`Services` (set up by the app's lifespan)."""
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]


def get_answers(services: ServicesDep) -> Answers:
    """The recommendation path."""
    return services.answers


def get_intake(services: ServicesDep) -> FeedbackIntake:
    """The feedback path."""
    return services.intake


def get_lookups(services: ServicesDep) -> Lookups:
    """Similar items and user histories."""
    return services.lookups


def get_admin(services: ServicesDep) -> Admin:
    """The admin API's work (check the key with :data:`AdminKey` too)."""
    return services.admin


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_admin(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(max_length=200)] = None,
) -> None:
    """Admin calls need the configured key in ``X-API-Key``; with none configured, none pass."""
    expected = settings.admin_api_key
    if not expected:
        raise HTTPException(403, "the admin API is disabled (no ADMIN_API_KEY configured)")
    if not x_api_key or not hmac.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong X-API-Key")


AnswersDep = Annotated[Answers, Depends(get_answers)]
FeedbackDep = Annotated[FeedbackIntake, Depends(get_intake)]
LookupsDep = Annotated[Lookups, Depends(get_lookups)]
AdminDep = Annotated[Admin, Depends(get_admin)]
#: A route's guard: the request carries the admin key (see :func:`require_admin`).
AdminKey = Annotated[None, Depends(require_admin)]
