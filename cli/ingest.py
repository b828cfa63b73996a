"""`rolesearch ingest`: build or update the index from its sources, here or on Ray."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import RAY_HELP, app, fail, os_user, ray_cluster_or_exit, settings_from
from rolesearch.settings import Settings


@app.command()
def ingest(
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder of articles (default corpus/)"),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default index/)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary"),
    wait: bool = typer.Option(False, "--wait", help="Wait for a build already running instead of refusing"),
    full: bool = typer.Option(False, "--full", help="Re-chunk and re-embed everything, ignoring the previous "
                              "version and the embedding cache"),
    source: Optional[list[str]] = typer.Option(None, "--source", help="KIND:LOCATION, repeatable: folder:DIR, "
                                               "mediawiki:EXPORT.xml, mediawiki:https://WIKI/w/api.php, confluence:SPACE.zip|DIR, crawl:URL "
                                               "(default: the sources file of ROLESEARCH_SOURCES_FILE, else --corpus)"),
    access_map: Optional[Path] = typer.Option(None, "--access-map", help="YAML rules giving articles access groups "
                                              "by title, URL or path (default ROLESEARCH_ACCESS_MAP_FILE)"),
    allow_wider_access: bool = typer.Option(False, "--allow-wider-access", help="Publish even when some articles "
                                            "become readable by more readers than in the published version "
                                            "(a map removed, a rule or group dropped); recorded in the audit log"),
    ray_address: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    ray_actors: int = typer.Option(2, "--ray-actors", min=1, help="With --ray: actors embedding, one model each"),
    ray_actor_cpus: int = typer.Option(1, "--ray-actor-cpus", min=1, help="With --ray: CPUs (torch threads) per actor"),
) -> None:
    """Build or update the index from its sources, embedding only what changed."""
    from rolesearch.cluster import ClusterError
    from rolesearch.ingest.access import AccessMapError
    from rolesearch.ingest.pipeline import build_index
    from rolesearch.ingest.sources import SourceError
    from rolesearch.store.manifest import StoreError
    from rolesearch.store.roles import RolesError

    s = settings_from(corpus_dir=corpus, index_dir=index, access_map_file=access_map)
    try:
        access = s.access_map()
        sources = s.sources(source)
    except (AccessMapError, SourceError) as exc:
        fail(str(exc), 2)
    with contextlib.ExitStack() as stack:
        embedder = s.embedder() if ray_address is None else \
            _ray_embedder(stack, s, ray_address, ray_actors, ray_actor_cpus)
        # On Ray the actors encode the sentences too (with the passages' encoder): the manifest records it.
        sentence_embedder = s.sentence_embedder(embedder) if ray_address is None else embedder
        try:
            summary = build_index(s.corpus_dir, s.index_dir, embedder, s.chunking(),
                                  progress=not as_json and sys.stderr.isatty(), wait_for_lock=wait, full=full,
                                  cache_max_entries=s.cache_max_entries, roles=s.role_config(), sources=sources,
                                  access=access, ann_params=s.ann_params(), allow_wider_access=allow_wider_access,
                                  forced_by=f"command line (user {os_user()})", sentence_params=s.sentence_params(),
                                  sentence_embedder=sentence_embedder)
        except (StoreError, FileNotFoundError, RolesError, SourceError, ClusterError) as exc:
            fail(str(exc))
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
    for src in d["sources"]:  # e.g. "mediawiki https://wiki/api.php: changes sync, 2 requests, 0 fetched"
        counts = [f"{v} {k.replace('_', ' ')}" for k, v in src.items() if k not in ("kind", "location", "mode")]
        mode = f"{src['mode']} sync, " if "mode" in src else ""
        typer.echo(f"{src['kind']} {src['location']}: {mode}{', '.join(counts)}")
    for s_ in d["skipped"]:
        typer.secho(f"skipped {s_['path']}: {s_['reason']}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"published version {d['version']}")


def _ray_embedder(stack: contextlib.ExitStack, s: Settings, address: str, actors: int, actor_cpus: int):
    """The settings' model wrapped to embed on a Ray actor pool (the cluster is connected first: it fails fastest)."""
    from rolesearch.encoder.ray_encoder import RayEncoder

    ray_cluster_or_exit(stack, address, actors * actor_cpus)
    return RayEncoder(s.embedder(), actors, actor_cpus)
