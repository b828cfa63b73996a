"""The FastAPI app factory: model and index loaded once in the lifespan, routes get them by dependency."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.reindex import Reindexer
from api.reload import watch_index
from api.routes import admin, ask, health, search
from api.service import Service
from api.settings import Settings
from ingest.embedding import Embedder


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the app; pass an embedder to share a loaded model (tests do)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        model = embedder or Embedder(settings.model, settings.device, settings.batch_size)
        service = Service(settings, model)
        service.try_load()
        app.state.service = service
        app.state.reindexer = Reindexer(service)
        watcher = asyncio.create_task(watch_index(service, settings.reload_interval)) if settings.reload_interval > 0 else None
        app.state.roles = settings.role_config()
        yield
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="rolesearch",
        summary="Search and answers over articles about ML engineering roles",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(search.router)
    app.include_router(ask.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    return app
