"""Dependencies handed to routes: the service and the searcher for this request.

They are coroutines although none awaits anything: FastAPI runs a plain `def` dependency in its
thread pool, a thread hand-off per dependency per request (four on /search), which cost more CPU
than the work they do. None of them blocks: the token file is re-read only when it changed.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from rolesearch.api.auth import (
    ANONYMOUS,
    ANYONE,
    SECRET_HEADER,
    Caller,
    CallerRefused,
    check_proxy_secret,
    proxy_caller,
    secret_matches,
)
from rolesearch.api.metrics import Metrics
from rolesearch.api.reindex import Reindexer
from rolesearch.api.service import IndexUnavailable, Service
from rolesearch.api.sync import Syncer
from rolesearch.api.tokens import TokenFileError, TokenStore
from rolesearch.search.searcher import Searcher
from rolesearch.settings import Settings


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_searcher(service: Annotated[Service, Depends(get_service)]) -> Searcher:
    try:
        return service.current()
    except IndexUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"index not available: {exc}") from exc


ServiceDep = Annotated[Service, Depends(get_service)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]


async def get_reindexer(request: Request) -> Reindexer:
    return request.app.state.reindexer


async def require_admin(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))],
) -> None:
    """Admit a request bearing ROLESEARCH_ADMIN_TOKEN; with no token configured the admin API is off."""
    token = service.settings.admin_token
    expected = token.get_secret_value().encode() if token is not None else b""
    if not expected:
        raise HTTPException(status_code=403, detail="admin endpoints are off: set ROLESEARCH_ADMIN_TOKEN to enable them")
    given = credentials.credentials.encode() if credentials is not None else b""
    # Constant time, so the response time says nothing about how much of a guess was right.
    if not hmac.compare_digest(given, expected):
        raise HTTPException(status_code=401, detail="missing or wrong admin token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})


ReindexerDep = Annotated[Reindexer, Depends(get_reindexer)]
AdminDep = Depends(require_admin)


async def require_notifier(
    request: Request, service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))],
) -> None:
    """Admit the wiki's push (the proxy's shared secret in X-RoleSearch-Secret) or an admin (the admin token)."""
    secret = service.settings.proxy_secret
    if secret is not None and secret_matches(request.headers.get(SECRET_HEADER), secret.get_secret_value()):
        return
    await require_admin(service, credentials)


async def get_syncer(request: Request) -> Syncer:
    return request.app.state.syncer


NotifierDep = Depends(require_notifier)
SyncerDep = Annotated[Syncer, Depends(get_syncer)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]


def get_token_store(request: Request) -> TokenStore:
    """The token file of this app, read on first use (only token mode needs it)."""
    store = getattr(request.app.state, "tokens", None)
    if store is None:
        store = request.app.state.tokens = TokenStore(request.app.state.service.settings.auth_tokens_file)
    return store


async def get_caller(request: Request, settings: SettingsDep) -> Caller:
    """Who this request is answered for, by ROLESEARCH_AUTH (off: everyone reads everything).

    The bearer token is read by hand, not declared with HTTPBearer: the schema would then say every
    search needs one, which is only true in token mode (and even there a request without one is public).
    """
    if settings.auth == "off":
        return ANYONE
    if settings.auth == "proxy":
        # The connection's own address: `rolesearch serve` turns uvicorn's X-Forwarded-For rewriting off in this mode.
        peer = request.client.host if request.client else None
        try:
            secret = settings.proxy_secret.get_secret_value() if settings.proxy_secret else None
            headers = request.headers
            check_proxy_secret(headers.get(SECRET_HEADER), secret,
                               settings.auth_user_header in headers or settings.auth_groups_header in headers)
            return proxy_caller(peer, request.headers.get(settings.auth_user_header),
                                request.headers.get(settings.auth_groups_header), settings.trusted_proxies)
        except CallerRefused as exc:
            raise HTTPException(exc.status, exc.detail) from exc
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token.strip() or scheme.lower() != "bearer":
        return ANONYMOUS  # no token: public articles only (the search page in a browser)
    try:
        entry = get_token_store(request).lookup(token.strip())
    except TokenFileError as exc:
        raise HTTPException(503, f"tokens cannot be checked: {exc}") from exc
    if entry is None:
        raise HTTPException(401, "unknown token (Authorization: Bearer <token>; see `rolesearch token add`)",
                            headers={"WWW-Authenticate": "Bearer"})
    return Caller(entry.name, frozenset(entry.groups))


CallerDep = Annotated[Caller, Depends(get_caller)]
