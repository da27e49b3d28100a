"""The dashboard at `/`: Jinja2 pages drawn in the browser from the API (plain JavaScript,
server-sent events for live updates; no front-end build step).

Every page is a shell: the layout, the namespace switcher and the page's skeleton; its data
comes from /api/v1, so the dashboard shows exactly what any API client sees and its actions
are the API's POSTs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from shoal.core.auth import Action
from shoal.core.errors import Unauthenticated
from shoal.core.model import DEFAULT_NAMESPACE, JobState

from ._auth import SESSION_COOKIE
from .state import get_state

__all__ = ["LoginIn", "mount"]

_HERE = Path(__file__).parent
_templates = Jinja2Templates(directory=str(_HERE / "templates"))

router = APIRouter(include_in_schema=False)

_PAGES = {
    "overview": "Overview",
    "queues": "Queues",
    "jobs": "Jobs",
    "workers": "Workers",
    "schedules": "Schedules",
}

NamespaceParam = Annotated[str, Query(min_length=1, max_length=200)]


class LoginIn(BaseModel):
    """The dashboard's sign-in: a user name and password, or an API token."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=1000)
    token: str | None = Field(default=None, min_length=1, max_length=1000)


async def _page(request: Request, page: str, namespace: str, **context: object) -> Response:
    state = get_state(request)
    try:
        session = await state.authenticate(request)
    except Unauthenticated:
        return RedirectResponse("/login", status_code=303)
    state.require(Action.READ, namespace)  # 403: a page of a namespace the caller cannot read
    readable = state.readable()
    namespaces = set(await state.known_namespaces()) | {namespace}
    namespaces |= {w.namespace for w in await state.service.list_workers(None)}
    namespaces = {name for name in namespaces if readable(name)} | {namespace}
    return _templates.TemplateResponse(
        request,
        f"{page}.html",
        {
            "title": state.settings.title,
            "page": page,
            "pages": _PAGES,
            "namespace": namespace,
            "namespaces": sorted(namespaces),
            "states": [s.value for s in JobState],
            # sent back in X-CSRF-Token by the page's scripts on every state-changing call
            "csrf": session.csrf if session is not None else "",
            "signed_in": session is not None,
            **context,
        },
    )


@router.get("/", response_class=HTMLResponse)
async def overview_page(
    request: Request, namespace: NamespaceParam = DEFAULT_NAMESPACE
) -> Response:
    """Counts, charts and workers online."""
    return await _page(request, "overview", namespace)


@router.get("/queues", response_class=HTMLResponse)
async def queues_page(request: Request, namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Response:
    """Queues with their counts and actions."""
    return await _page(request, "queues", namespace)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request, namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Response:
    """Jobs with filters and keyset pages."""
    return await _page(request, "jobs", namespace)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    request: Request, job_id: str, namespace: NamespaceParam = DEFAULT_NAMESPACE
) -> Response:
    """One job: payload, result, error, attempts, timeline and actions."""
    return await _page(request, "job", namespace, job_id=job_id)


@router.get("/workers", response_class=HTMLResponse)
async def workers_page(request: Request, namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Response:
    """Workers with their state and heartbeat age."""
    return await _page(request, "workers", namespace)


@router.get("/schedules", response_class=HTMLResponse)
async def schedules_page(
    request: Request, namespace: NamespaceParam = DEFAULT_NAMESPACE
) -> Response:
    """Schedules with their trigger, next fires and actions."""
    return await _page(request, "schedules", namespace)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    """Sign in with the API token (only when the server has one)."""
    state = get_state(request)
    return _templates.TemplateResponse(
        request, "login.html", {"title": state.settings.title, "page": "login"}
    )


@router.post("/login")
async def login(request: Request, body: LoginIn) -> Response:
    """Check the credentials and open a session: an opaque id in a strict same-site,
    HTTP-only cookie (no other site's page can use it, no script can read it).
    """
    state = get_state(request)
    peer = request.client.host if request.client else ""
    if body.token is not None:
        principal = await state.auth.authenticate_token(body.token, peer)
    elif body.name is not None and body.password is not None:
        principal = await state.auth.authenticate_password(body.name, body.password, peer)
    else:
        raise Unauthenticated("give a name and a password, or a token")
    session_id, _ = state.web_sessions.open(principal)
    response = JSONResponse({"ok": True, "user": principal.name})
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(state.settings.session_ttl),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the CSRF header is needed, as for any change made with the cookie)."""
    state = get_state(request)
    session = await state.authenticate(request)
    if session is not None:
        state.web_sessions.close(request.cookies.get(SESSION_COOKIE, ""))
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE)
    return response


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to `app`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
