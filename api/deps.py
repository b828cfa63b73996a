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
    forwarded_hosts,
    proxy_caller,
    secret_matches,
)
from rolesearch.api.metrics import Metrics
from rolesearch.api.recording import Recording
from rolesearch.api.reindex import Reindexer
from rolesearch.api.service import IndexUnavailable, Service
from rolesearch.api.sync import Syncer
from rolesearch.api.tokens import TokenFileError, TokenStore
from rolesearch.search.scope import restricted_count
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


def _one_header(request: Request, name: str) -> str | None:
    """The header's value; a 400 when it is sent more than once (a proxy that appends instead of replacing
    would otherwise let the client's own copy through, whichever copy was read)."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise HTTPException(400, f"header {name} is sent {len(values)} times; identity headers must appear once")
    return values[0] if values else None


async def get_caller(request: Request, settings: SettingsDep, service: ServiceDep) -> Caller:
    """Who this request is answered for, by ROLESEARCH_AUTH (off: everyone reads everything).

    The bearer token is read by hand, not declared with HTTPBearer: the schema would then say every
    search needs one, which is only true in token mode (and even there a request without one is public).
    """
    if settings.auth == "off":
        # Left unset over an index with restricted articles: fail closed, public articles only, until
        # ROLESEARCH_AUTH=off is set on purpose or a mode is chosen (Service.load logs the warning).
        searcher = service.searcher
        if "auth" not in settings.model_fields_set and searcher is not None and \
                restricted_count(searcher.index.articles):
            return ANONYMOUS
        return ANYONE
    if settings.auth == "proxy":
        # The connection's own address: `rolesearch serve` turns uvicorn's X-Forwarded-For rewriting off in this mode.
        peer = request.client.host if request.client else None
        if peer and peer in forwarded_hosts(request.headers.getlist("x-forwarded-for")):
            # A server in front (Ray Serve's proxy, uvicorn without --no-proxy-headers) replaced the real peer
            # with an address the client wrote itself: never believe it.
            raise HTTPException(403, f"requests must come through the authenticating proxy: peer {peer} was taken "
                                     "from X-Forwarded-For by a server in front; turn its proxy-header handling off")
        try:
            secret = settings.proxy_secret.get_secret_value() if settings.proxy_secret else None
            user = _one_header(request, settings.auth_user_header)
            groups = _one_header(request, settings.auth_groups_header)
            check_proxy_secret(_one_header(request, SECRET_HEADER), secret, user is not None or groups is not None)
            return proxy_caller(peer, user, groups, settings.trusted_proxies)
        except CallerRefused as exc:
            raise HTTPException(exc.status, exc.detail) from exc
    scheme, _, token = (_one_header(request, "authorization") or "").partition(" ")
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


async def get_recording(request: Request) -> Recording | None:
    """The analytics recorder of this app; None when ROLESEARCH_ANALYTICS=off."""
    return getattr(request.app.state, "recording", None)


RecordingDep = Annotated[Recording | None, Depends(get_recording)]


def peer_of(request: Request) -> str | None:
    """The connection's address (the reader's, when no user is named)."""
    return request.client.host if request.client else None
