"""GET / (the search page) and GET /opensearch.xml (register the page as a browser search engine)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from api.deps import TemplatesDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def search_page() -> FileResponse:
    # One static page; its script reads ?q= and runs that search on load.
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/opensearch.xml")
def opensearch(request: Request, templates: TemplatesDep) -> Response:
    base = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(
        request, "opensearch.xml", {"base": base}, media_type="application/opensearchdescription+xml",
    )
