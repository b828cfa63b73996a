"""The `rolesearch` command: ingest, search, serve, eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from api.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search and answers over ML role articles.")


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder of articles (default corpus/)"),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default index/)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary"),
    wait: bool = typer.Option(False, "--wait", help="Wait for a build already running instead of refusing"),
) -> None:
    """Build or update the index from the corpus, embedding only what changed."""
    from ingest.embedding import Embedder
    from ingest.pipeline import build_index
    from ingest.store import StoreError

    s = _settings(corpus_dir=corpus, index_dir=index)
    embedder = Embedder(s.model, s.device, s.batch_size)
    try:
        summary = build_index(s.corpus_dir, s.index_dir, embedder, s.chunking(),
                              progress=not as_json and sys.stderr.isatty(), wait_for_lock=wait)
    except (StoreError, FileNotFoundError) as exc:
        _fail(str(exc))
    d = summary.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    a, p = d["articles"], d["passages"]
    typer.echo(summary.reason)
    typer.echo(f"articles: {a['total']} indexed ({a['added']} added, {a['changed']} changed, "
               f"{a['unchanged']} unchanged, {a['removed']} removed, {a['skipped']} skipped)")
    typer.echo(f"passages: {p['total']} ({p['embedded']} embedded, {p['reused']} reused) in {d['seconds']:.1f}s")
    for s_ in d["skipped"]:
        typer.secho(f"skipped {s_['path']}: {s_['reason']}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"published version {d['version']}")


def _searcher(index: Optional[Path]):
    from ingest.embedding import Embedder
    from ingest.store import StoreError
    from search.index import SearchIndex
    from search.searcher import Searcher

    s = _settings(index_dir=index)
    try:
        idx = SearchIndex.load(s.index_dir, s.model)
    except StoreError as exc:
        _fail(str(exc))
    return Searcher(idx, Embedder(s.model, s.device, s.batch_size), s.search_config())


@app.command()
def search(
    query: str = typer.Argument(..., help="The question"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(5, "-k", "--k", help="Number of hits (1-50)"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical or hybrid"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the body of HTTP /search"),
) -> None:
    """Rank passages for a question."""
    from pydantic import ValidationError

    from api.models import SearchRequest
    from api.responses import search_response

    try:
        req = SearchRequest(q=query, k=k, mode=mode)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    searcher = _searcher(index)
    body = search_response(searcher.search(req.q, req.k, req.mode), searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    for h in body.hits:
        typer.secho(f"{h.rank}. [{h.score:.3f}] {h.title} — {h.section or '(top)'}", bold=True)
        typer.echo("   " + " ".join(h.text.split())[:300])
        typer.echo(f"   {h.url}")


@app.command()
def serve(
    index: Optional[Path] = typer.Option(None, "--index"),
    host: Optional[str] = typer.Option(None, "--host"),
    port: Optional[int] = typer.Option(None, "--port"),
) -> None:
    """Serve the HTTP API under uvicorn."""
    import uvicorn

    from api.access_log import uvicorn_log_config
    from api.app import create_app

    s = _settings(index_dir=index, host=host, port=port)
    # The app writes its own JSON access lines (with latency); uvicorn's would say the same thing twice.
    uvicorn.run(create_app(s), host=s.host, port=s.port, log_level="info",
                log_config=uvicorn_log_config(), access_log=False)


@app.command("eval")
def eval_(
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL question set"),
    index: Optional[Path] = typer.Option(None, "--index"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical, hybrid or all"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure retrieval on a question set: hit@1, hit@3, MRR@10."""
    from search.evaluation import evaluate_questions, load_questions

    if questions is None:
        _fail("give --questions FILE")
    qs = load_questions(questions)
    searcher = _searcher(index)
    modes = ["dense", "lexical", "hybrid"] if mode == "all" else [mode]
    results = {m: evaluate_questions(searcher, qs, m) for m in modes}
    if as_json:
        typer.echo(json.dumps(results if len(modes) > 1 else results[modes[0]], indent=2))
        return
    for m, r in results.items():
        typer.echo(f"{m:8s} hit@1 {r['hit@1']:.3f}  hit@3 {r['hit@3']:.3f}  MRR@10 {r['mrr@10']:.3f}  ({r['questions']} questions)")
        for miss in r["misses"]:
            typer.echo(f"   miss {miss['id']} rank {miss['rank']}: {miss['question']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
