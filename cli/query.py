"""`rolesearch search` and `rolesearch ask`: the served ranker and answers from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import app, fail, settings_from


def searcher_or_exit(index: Optional[Path]):
    """The served searcher (Settings.open_searcher), index_dir from --index; an unusable index or roles file exits 1."""
    from rolesearch.store.manifest import StoreError
    from rolesearch.store.roles import RolesError

    try:
        return settings_from(index_dir=index).open_searcher()
    except (StoreError, RolesError) as exc:
        fail(str(exc))


def _request(**fields):
    """The command's options as the HTTP API's SearchRequest, with its limits; bad ones exit 2 with the reasons."""
    from pydantic import ValidationError

    from rolesearch.api.models import SearchRequest

    try:
        return SearchRequest(**fields)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)


def _allow(searcher, req, groups: list[str]):
    """The passage masks for a command-line search: allow (the filters, and the groups when --group is given)
    and scope (what the reader may read: BM25 statistics are taken over it, as the server does)."""
    from rolesearch.search.access import EVERYONE, Reader
    from rolesearch.search.filters import Filters
    from rolesearch.search.scope import passage_mask

    reader = Reader.of(groups) if groups else EVERYONE
    return (passage_mask(searcher.index, reader, Filters.of(req.article, req.tag, req.source)),
            passage_mask(searcher.index, reader, Filters()))


@app.command()
def search(
    query: str = typer.Argument(..., help="The question"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(5, "-k", "--k", help="Number of hits (1-50)"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical or hybrid"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the body of HTTP /search"),
    article: list[str] = typer.Option([], "--article", help="Only this article id (repeatable)"),
    tag: list[str] = typer.Option([], "--tag", help="Only articles with this tag (repeatable)"),
    source: list[str] = typer.Option([], "--source", help="Only articles from this source (repeatable)"),
    group: list[str] = typer.Option([], "--group", help="Search as a reader in this access group (repeatable); "
                                    "without it every article is searched"),
) -> None:
    """Rank passages for a question."""
    from rolesearch.api.responses import search_response

    req = _request(q=query, k=k, mode=mode, article=article, tag=tag, source=source)
    searcher = searcher_or_exit(index)
    allow, scope = _allow(searcher, req, group)
    body = search_response(searcher.search(req.q, req.k, req.mode, allow=allow, scope=scope), searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    for h in body.hits:
        typer.secho(f"{h.rank}. [{h.score:.3f}] {h.title} — {h.section or '(top)'}", bold=True)
        typer.echo("   " + " ".join(h.text.split())[:300])
        typer.echo(f"   {h.url}")


@app.command()
def ask(
    query: str = typer.Argument(..., help="The question"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(5, "-k", "--k", help="Number of hits shown (1-50)"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the body of HTTP /ask"),
    article: list[str] = typer.Option([], "--article", help="Only this article id (repeatable)"),
    tag: list[str] = typer.Option([], "--tag", help="Only articles with this tag (repeatable)"),
    source: list[str] = typer.Option([], "--source", help="Only articles from this source (repeatable)"),
    group: list[str] = typer.Option([], "--group", help="Answer as a reader in this access group (repeatable); "
                                    "without it every article is used"),
) -> None:
    """Answer a question: the roles that own the duty, with the passages that say so."""
    from rolesearch.api.responses import ask_response
    from rolesearch.search.answers import ask as answer_question

    req = _request(q=query, k=k, article=article, tag=tag, source=source)
    s = settings_from(index_dir=index)
    searcher = searcher_or_exit(index)
    result = answer_question(searcher, req.q, searcher.roles, s.answer_config(), req.k, *_allow(searcher, req, group))
    body = ask_response(result, searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    a = body.answer
    typer.secho(a.text if a.answerable else f"Not answered: {a.text} ({a.reason})", bold=True)
    for r in a.roles:
        typer.echo(f"  {r.role} ({r.confidence:.0%}): {', '.join(r.evidence)}")
    for h in body.hits[:3]:
        typer.echo(f"{h.rank}. {h.title} — {h.section or '(top)'}: {h.highlight.text if h.highlight else h.text[:200]}")
