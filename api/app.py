"""The FastAPI app factory: model and index loaded once in the lifespan, routes get them by dependency."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from rolesearch.api.access_log import access_logger
from rolesearch.api.errors import ERROR_RESPONSES, install_error_handlers
from rolesearch.api.metrics import Metrics
from rolesearch.api.middleware import BodySizeLimit, PrivateResponses, RequestObserver
from rolesearch.api.recording import start_recording
from rolesearch.api.reindex import Reindexer
from rolesearch.api.reload import watch_index
from rolesearch.api.routes import (
    admin,
    analytics,
    articles,
    ask,
    feedback,
    health,
    metrics,
    notify,
    page,
    readiness,
    search,
)
from rolesearch.api.service import Service
from rolesearch.api.sync import Syncer
from rolesearch.encoder.base import Encoder
from rolesearch.encoder.batched import BatchedQueryEncoder
from rolesearch.encoder.cache import CachedQueryEncoder
from rolesearch.settings import Settings

API_DIR = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None, embedder: Encoder | None = None,
               source_specs: list[str] | None = None) -> FastAPI:
    """Build the app; pass an embedder to share a loaded model (tests do); source_specs (`KIND:LOCATION`, as
    `serve --source` takes them) replace the sources file for the background sync and reindex."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
            import faiss
            from threadpoolctl import threadpool_limits

            # One query is one FAISS search: OpenMP teams only spin against the other requests' threads.
            faiss.omp_set_num_threads(settings.torch_threads)
            # Same for numpy's BLAS: a query's rescoring products are small, and OpenBLAS's spinning
            # workers cost more CPU than they save (docs/performance.md, "hybrid at 1M").
            threadpool_limits(settings.torch_threads, user_api="blas")
        model = embedder or replace(settings.embedder_spec(), threads=settings.torch_threads).load()
        if settings.query_concurrency:
            model = BatchedQueryEncoder(model, settings.query_concurrency, settings.query_batch)
        if settings.query_cache_entries:  # outermost: a repeated query never waits for a free encoding
            model = CachedQueryEncoder(model, settings.query_cache_entries, settings.query_cache_bytes)
        service = Service(settings, model)
        service.try_load()
        app.state.service = service
        app.state.reindexer = Reindexer(service, app.state.metrics, source_specs)
        app.state.recording = start_recording(settings, app.state.metrics)  # None when analytics is off
        app.state.syncer = Syncer(service, app.state.metrics, settings.sync_interval, source_specs)
        if settings.sync_interval > 0:
            app.state.syncer.start()
        watcher = asyncio.create_task(watch_index(service, settings.reload_interval)) if settings.reload_interval > 0 else None
        yield
        app.state.syncer.stop()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if app.state.recording is not None:
            await asyncio.to_thread(app.state.recording.close)  # what is queued is written first

    app = FastAPI(
        title="rolesearch",
        summary="Search and answers over articles about ML engineering roles",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.metrics = Metrics()
    app.state.templates = Jinja2Templates(directory=API_DIR / "templates")
    install_error_handlers(app)
    # Added innermost first: the observer sees every request, CORS answers preflights before the body limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PrivateResponses, vary=["Authorization", settings.auth_user_header, settings.auth_groups_header])
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type"], max_age=600)
    app.add_middleware(RequestObserver, metrics=app.state.metrics,
                       log=access_logger() if settings.access_log else None)
    app.mount("/static", StaticFiles(directory=API_DIR / "static"), name="static")
    app.include_router(search.router)
    app.include_router(ask.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(notify.router)
    app.include_router(page.router)
    app.include_router(articles.router)
    app.include_router(metrics.router)
    app.include_router(readiness.router)
    app.include_router(feedback.router)
    app.include_router(analytics.router)
    return app
