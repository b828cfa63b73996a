"""The `rolesearch` command: ingest, search, ask, serve, eval, versions, rollback, token."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from api.settings import Settings

LOCAL_RAY = "local"  # `--ray` alone: a local cluster started for the command and stopped after it (as ray.init says)
RAY_HELP = ("Run on Ray: ADDRESS as ray.init takes it (auto, host:6379, ray://host:10001); alone, a local cluster "
            "started here and stopped at the end. Needs pip install -e '.\\[scale]'")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search and answers over ML role articles.")


def _settings(**overrides) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:  # e.g. ROLESEARCH_AUTH=proxy without ROLESEARCH_TRUSTED_PROXIES
        _fail("settings: " + "; ".join(e["msg"] for e in exc.errors()), 2)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder of articles (default corpus/)"),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default index/)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary"),
    wait: bool = typer.Option(False, "--wait", help="Wait for a build already running instead of refusing"),
    full: bool = typer.Option(False, "--full", help="Re-chunk and re-embed everything, ignoring the previous "
                              "version and the embedding cache"),
    source: Optional[list[str]] = typer.Option(None, "--source", help="KIND:LOCATION, repeatable: folder:DIR, "
                                               "mediawiki:EXPORT.xml, confluence:SPACE.zip|DIR, crawl:URL "
                                               "(default: the sources file of ROLESEARCH_SOURCES_FILE, else --corpus)"),
    access_map: Optional[Path] = typer.Option(None, "--access-map", help="YAML rules giving articles access groups "
                                              "by title, URL or path (default ROLESEARCH_ACCESS_MAP_FILE)"),
    ray_address: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    ray_actors: int = typer.Option(2, "--ray-actors", min=1, help="With --ray: actors embedding, one model each"),
    ray_actor_cpus: int = typer.Option(1, "--ray-actor-cpus", min=1, help="With --ray: CPUs (torch threads) per actor"),
) -> None:
    """Build or update the index from its sources, embedding only what changed."""
    from ingest.access import AccessMapError
    from ingest.cluster import ClusterError
    from ingest.pipeline import build_index
    from ingest.roles import RolesError
    from ingest.sources import SourceError
    from ingest.store import StoreError

    s = _settings(corpus_dir=corpus, index_dir=index, access_map_file=access_map)
    try:
        access = s.access_map()
        sources = s.sources(source)
    except (AccessMapError, SourceError) as exc:
        _fail(str(exc), 2)
    with contextlib.ExitStack() as stack:
        embedder = s.embedder() if ray_address is None else \
            _ray_embedder(stack, s, ray_address, ray_actors, ray_actor_cpus)
        try:
            summary = build_index(s.corpus_dir, s.index_dir, embedder, s.chunking(),
                                  progress=not as_json and sys.stderr.isatty(), wait_for_lock=wait, full=full,
                                  cache_max_entries=s.cache_max_entries, roles=s.role_config(), sources=sources,
                                  access=access, ann_params=s.ann_params())
        except (StoreError, FileNotFoundError, RolesError, SourceError, ClusterError) as exc:
            _fail(str(exc))
    d = summary.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    a, p = d["articles"], d["passages"]
    typer.echo(summary.reason)
    indexed = a["added"] + a["changed"] + a["unchanged"]
    typer.echo(f"articles: {indexed} indexed ({a['added']} added, {a['changed']} changed, "
               f"{a['unchanged']} unchanged, {a['removed']} removed, {a['skipped']} skipped)")
    typer.echo(f"passages: {p['total']} ({p['embedded']} embedded, {p['reused']} reused) in {d['seconds']:.1f}s")
    for r in d["renamed"]:
        typer.echo(f"renamed {r['from']} -> {r['to']}")
    for s_ in d["skipped"]:
        typer.secho(f"skipped {s_['path']}: {s_['reason']}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"published version {d['version']}")


def _ray_cluster(stack: contextlib.ExitStack, address: str, cpus: int):
    """Connect to the Ray cluster at address ("local": start one here) for the stack's lifetime, or fail."""
    from ingest.cluster import ClusterError, ClusterOptions, ray_cluster

    local = address == LOCAL_RAY
    # A local cluster gets at least the CPUs asked for, so the actor pool or the replicas can all start.
    options = ClusterOptions(None, max(os.cpu_count() or 1, cpus)) if local else ClusterOptions(address)
    try:
        stack.enter_context(ray_cluster(options))
    except ClusterError as exc:
        _fail(str(exc))


def _ray_embedder(stack: contextlib.ExitStack, s: Settings, address: str, actors: int, actor_cpus: int):
    """The settings' model wrapped to embed on a Ray actor pool (the cluster is connected first: it fails fastest)."""
    from ingest.distributed import RayEmbedder

    _ray_cluster(stack, address, actors * actor_cpus)
    return RayEmbedder(s.embedder(), actors, actor_cpus)


def _searcher(index: Optional[Path]):
    from ingest.roles import RolesError
    from ingest.store import StoreError
    from search.index import SearchIndex
    from search.searcher import Searcher

    s = _settings(index_dir=index)
    try:
        idx = SearchIndex.load(s.index_dir, s.model, nprobe=s.index_nprobe)
        roles = s.role_config()
    except (StoreError, RolesError) as exc:
        _fail(str(exc))
    return Searcher(idx, s.embedder(), s.search_config(), roles)


def _allow(searcher, req, groups: list[str]):
    """The passage mask for a command-line search: the filters, and the groups when --group is given."""
    from search.access import EVERYONE, Reader
    from search.filters import Filters
    from search.scope import passage_mask

    reader = Reader.of(groups) if groups else EVERYONE
    return passage_mask(searcher.index, reader, Filters.of(req.article, req.tag, req.source))


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
    from pydantic import ValidationError

    from api.models import SearchRequest
    from api.responses import search_response

    try:
        req = SearchRequest(q=query, k=k, mode=mode, article=article, tag=tag, source=source)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    searcher = _searcher(index)
    allow = _allow(searcher, req, group)
    body = search_response(searcher.search(req.q, req.k, req.mode, allow=allow), searcher.index.articles)
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
    from pydantic import ValidationError

    from api.models import SearchRequest
    from api.responses import ask_response
    from search.answers import ask as answer_question

    try:
        req = SearchRequest(q=query, k=k, article=article, tag=tag, source=source)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    s = _settings(index_dir=index)
    searcher = _searcher(index)
    result = answer_question(searcher, req.q, searcher.roles, s.answer_config(), req.k, _allow(searcher, req, group))
    body = ask_response(result, searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    a = body.answer
    typer.secho(a.text if a.answerable else f"Not answered: {a.text}", bold=True)
    for r in a.roles:
        typer.echo(f"  {r.role} ({r.confidence:.0%}): {', '.join(r.evidence)}")
    for h in body.hits[:3]:
        typer.echo(f"{h.rank}. {h.title} — {h.section or '(top)'}: {h.highlight.text if h.highlight else h.text[:200]}")


@app.command()
def serve(
    index: Optional[Path] = typer.Option(None, "--index"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder POST /admin/reindex reads (default corpus/)"),
    host: Optional[str] = typer.Option(None, "--host"),
    port: Optional[int] = typer.Option(None, "--port"),
    ray_address: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    replicas: Optional[int] = typer.Option(None, "--replicas", help="With --ray: replicas of the app (default 2)"),
) -> None:
    """Serve the HTTP API under uvicorn (or Ray Serve with --ray); a newly published index version is swapped in by itself."""
    if replicas is not None and replicas < 1:
        _fail(f"--replicas must be at least 1, got {replicas}", 2)
    if replicas is not None and ray_address is None:
        _fail("--replicas needs --ray (a plain server is one process)", 2)
    s = _settings(index_dir=index, corpus_dir=corpus, host=host, port=port)
    if ray_address is not None:
        _serve_on_ray(s, ray_address, replicas or 2)
        return
    import uvicorn

    from api.access_log import uvicorn_log_config
    from api.app import create_app

    # The app writes its own JSON access lines (with latency); uvicorn's would say the same thing twice.
    # In proxy mode the peer check needs the connection's own address, not one rewritten from X-Forwarded-For.
    uvicorn.run(create_app(s), host=s.host, port=s.port, log_level="info",
                log_config=uvicorn_log_config(), access_log=False, proxy_headers=s.auth != "proxy")


@app.command()
def versions(
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON"),
) -> None:
    """List the kept index versions: id, build time, counts, and which one is published."""
    from ingest.store import list_versions

    s = _settings(index_dir=index)
    kept = list_versions(s.index_dir)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(v) for v in kept], indent=2))
        return
    if not kept:
        _fail(f"no index versions in {s.index_dir}: run `rolesearch ingest`")
    for v in kept:
        mark = "*" if v.published else " "
        what = f"{v.articles} articles, {v.passages} passages" if v.complete else f"unusable: {v.problem}"
        typer.echo(f"{mark} {v.version}  {v.built_at or '-':25s}  {what}")
    typer.echo("(* published)")


@app.command()
def rollback(
    version: str = typer.Argument(..., help="A version id from `rolesearch versions`"),
    index: Optional[Path] = typer.Option(None, "--index"),
) -> None:
    """Publish a kept index version again; running servers swap it in within their reload interval."""
    from ingest.store import StoreError, rollback as publish_again

    s = _settings(index_dir=index)
    try:
        previous = publish_again(s.index_dir, version, s.model)
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"published version {version} (was {previous or 'none'})")


token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for ROLESEARCH_AUTH=token (stored as hashes).")
app.add_typer(token_app, name="token")


@token_app.command("add")
def token_add(
    name: str = typer.Argument(..., help="Who or what the token is for"),
    group: list[str] = typer.Option([], "--group", help="An access group the token reads (repeatable)"),
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """Create a token, store its hash, and print the token once."""
    from api.tokens import TokenFileError, add_token

    path = file or _settings().auth_tokens_file
    try:
        token = add_token(path, name, group)
    except TokenFileError as exc:
        _fail(str(exc))
    typer.echo(token)
    typer.secho(f"token {name!r} added to {path} (groups: {', '.join(sorted(set(group))) or 'none: public only'}); "
                "it is not stored and cannot be shown again", err=True)


@token_app.command("remove")
def token_remove(
    name: str = typer.Argument(...),
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """Revoke the token called NAME."""
    from api.tokens import TokenFileError, remove_token

    path = file or _settings().auth_tokens_file
    try:
        if not remove_token(path, name):
            _fail(f"no token named {name!r} in {path}")
    except TokenFileError as exc:
        _fail(str(exc))
    typer.echo(f"token {name!r} removed")


@token_app.command("list")
def token_list(
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """The tokens' names, groups and creation times (never the tokens)."""
    from api.tokens import TokenFileError, read_tokens

    path = file or _settings().auth_tokens_file
    try:
        entries = read_tokens(path)
    except TokenFileError as exc:
        _fail(str(exc))
    for e in entries:
        typer.echo(f"{e.name}\t{','.join(e.groups) or '-'}\t{e.created or '-'}")


def _serve_on_ray(s: Settings, address: str, replicas: int) -> None:
    """Run the app as a Ray Serve deployment of `replicas` replicas until Ctrl-C or SIGTERM, then remove it."""
    from api.replicas import run_replicas, stop_replicas, wait_for_stop
    from ingest.cluster import ClusterError

    # Replicas may run on other nodes and in other folders: they get absolute paths (on storage all nodes share).
    s = s.model_copy(update={"index_dir": s.index_dir.resolve(), "corpus_dir": s.corpus_dir.resolve()})
    with contextlib.ExitStack() as stack:
        _ray_cluster(stack, address, replicas)
        try:
            url = run_replicas(s, replicas)
        except ClusterError as exc:
            _fail(str(exc))
        typer.echo(f"serving {s.index_dir} on {url} with {replicas} Ray Serve replicas; Ctrl-C stops")
        try:
            wait_for_stop()
        finally:
            stop_replicas()


@app.command("eval")
def eval_(
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL question set"),
    beir: Optional[Path] = typer.Option(None, "--beir", help="BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/)"),
    split: Optional[str] = typer.Option(None, "--split",
                                        help="Question set: tuning, heldout or all (default all). BEIR qrels: test, train, dev (default test)"),
    ranker: str = typer.Option("all", "--ranker", help="ours (the served ranker), baseline (search/baseline.py) or all"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder of cached BEIR corpus embeddings"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Embed the BEIR corpus again"),
    index: Optional[Path] = typer.Option(None, "--index"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical, hybrid or all (BEIR: always all)"),
    offtopic: Optional[Path] = typer.Option(None, "--offtopic", help="Also judge answers: role questions, and these off-topic ones"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure retrieval, ours beside the baseline: hit@1, hit@3, MRR@10 (overall and per kind) on a question set,
    or nDCG@10, Recall@100, MRR@10 on BEIR data."""
    if ranker not in ("ours", "baseline", "all"):
        _fail("--ranker must be ours, baseline or all", 2)
    rankers = ["ours", "baseline"] if ranker == "all" else [ranker]
    if beir is not None:
        _eval_beir(beir, split or "test", None if no_cache else cache, not no_cache, as_json, rankers)
        return
    from search.baseline import BaselineSearcher
    from search.evaluation import evaluate_answers, evaluate_questions, load_questions, select_split

    if questions is None:
        _fail("give --questions FILE or --beir DIR")
    modes = ["dense", "lexical", "hybrid"] if mode == "all" else [mode]
    if any(m not in ("dense", "lexical", "hybrid") for m in modes):
        _fail("--mode must be dense, lexical, hybrid or all", 2)
    try:
        qs = select_split(load_questions(questions), split or "all")
    except ValueError as exc:
        _fail(str(exc), 2)
    searcher = _searcher(index)
    by_name = {"ours": searcher, "baseline": BaselineSearcher(searcher.index, searcher.embedder, searcher.config.candidates)}
    results = {f"{r} {m}": evaluate_questions(by_name[r], qs, m) for r in rankers for m in modes}
    answers = None
    if offtopic is not None:
        s = _settings(index_dir=index)
        off = [json.loads(line)["question"] for line in offtopic.read_text(encoding="utf-8").splitlines() if line.strip()]
        answers = evaluate_answers(searcher, qs, off, searcher.roles, s.answer_config())
    if as_json:
        typer.echo(json.dumps({"split": split or "all", "results": results, "answers": answers}, indent=2))
        return
    typer.echo(f"{questions}, split {split or 'all'}: {len(qs)} questions")
    typer.echo(f"{'':18s} {'hit@1':>6s} {'hit@3':>6s} {'MRR@10':>7s}")
    for name, r in results.items():
        typer.echo(f"{name:18s} {r['hit@1']:6.3f} {r['hit@3']:6.3f} {r['mrr@10']:7.3f}")
    kinds = sorted({k for r in results.values() for k in r["per_kind"]})
    if kinds:
        typer.echo("\nper kind, hit@3 / MRR@10")
        typer.echo(f"{'kind (n)':18s} " + " ".join(f"{name:>16s}" for name in results))
        for k in kinds:
            n = next(r["per_kind"][k]["questions"] for r in results.values() if k in r["per_kind"])
            cells = [f"{r['per_kind'][k]['hit@3']:.3f} / {r['per_kind'][k]['mrr@10']:.3f}" for r in results.values()]
            typer.echo(f"{f'{k} ({n})':18s} " + " ".join(f"{c:>16s}" for c in cells))
    for name, r in results.items():
        if r["misses"]:
            typer.echo(f"\n{name}: not in the top 3")
        for miss in r["misses"]:
            typer.echo(f"   {miss['id']} ({miss['kind']}) rank {miss['rank']}: {miss['question']}")
    if answers is not None:
        typer.echo(f"\nanswers (ours): on-topic answered {answers['answered_on_topic']:.3f}, off-topic refused "
                   f"{answers['refused_off_topic']:.3f}, role questions {answers['role_questions']}: top role right "
                   f"{answers['role_top_right']:.3f}, exact role set {answers['role_exact']:.3f}")
        for w in answers["role_misses"]:
            typer.echo(f"   {w['id']}: expected {', '.join(w['expected'])}; got {', '.join(w['got']) or 'none'}")
        for q in answers["answered_off_topic"]:
            typer.echo(f"   answered off-topic: {q}")
        for qid in answers["unanswered"]:
            typer.echo(f"   refused on-topic: {qid}")


def _eval_beir(folder: Path, split: str, cache: Optional[Path], use_cache: bool, as_json: bool,
               rankers: list[str]) -> None:
    from search.beir import BeirError, default_cache_dir, evaluate_beir

    s = _settings()
    embedder = s.embedder()
    try:
        results = evaluate_beir(folder, embedder, split, s.search_config(),
                                (cache or default_cache_dir()) if use_cache else None,
                                progress=not as_json and sys.stderr.isatty(), rankers=tuple(rankers))
    except BeirError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    typer.echo(f"{folder} ({split}), {s.model}")
    for m, r in results.items():
        typer.echo(f"{m:13s} nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}  MRR@10 {r['mrr@10']:.4f}")


def with_ray_default(argv: list[str]) -> list[str]:
    """argv with a bare `--ray` (last, or before another option) given the value "local"; click has no optional values."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(LOCAL_RAY)
    return out


def main() -> None:
    app(args=with_ray_default(sys.argv[1:]))


if __name__ == "__main__":
    main()
