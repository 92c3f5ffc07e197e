"""The demo web page: ``GET /`` and its script and stylesheet (kept out of the OpenAPI schema).

The page (``web/index.html``, ``web/app.js``, ``web/style.css``) is plain HTML, CSS and
JavaScript shipped as package data: no build step and nothing loaded from other hosts. It
calls the public ``/v1`` API from the browser, so it shows exactly what any client gets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).with_name("web")

# Only these files are served, each with its content type; nothing else in the folder is.
ASSETS: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

# Everything the page loads comes from this origin; no inline script, no other host.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

web = APIRouter(include_in_schema=False)


@web.get("/")
def index() -> FileResponse:
    """The demo page."""
    return FileResponse(
        WEB_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


@web.get("/web/{name}")
def asset(name: str) -> FileResponse:
    """One of the page's assets (``app.js``, ``style.css``); 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no asset '{name}'")
    return FileResponse(
        WEB_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
