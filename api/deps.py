"""Dependencies handed to routes: the service and the searcher for this request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from api.metrics import Metrics
from api.service import IndexUnavailable, Service
from api.settings import Settings
from search.searcher import Searcher


def get_service(request: Request) -> Service:
    return request.app.state.service


def get_searcher(service: Annotated[Service, Depends(get_service)]) -> Searcher:
    try:
        return service.current()
    except IndexUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"index not available: {exc}") from exc


ServiceDep = Annotated[Service, Depends(get_service)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]


def get_settings(service: ServiceDep) -> Settings:
    return service.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
