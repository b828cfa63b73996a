"""`rolesearch serve`: the HTTP API under uvicorn, or as Ray Serve replicas."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import RAY_HELP, app, fail, ray_cluster_or_exit, settings_from
from rolesearch.settings import Settings


@app.command()
def serve(
    index: Optional[Path] = typer.Option(None, "--index"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder POST /admin/reindex reads (default corpus/)"),
    host: Optional[str] = typer.Option(None, "--host"),
    port: Optional[int] = typer.Option(None, "--port"),
    ray_address: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    replicas: Optional[int] = typer.Option(None, "--replicas", help="With --ray: replicas of the app (default 2)"),
    sync_every: Optional[float] = typer.Option(None, "--sync-every", metavar="SECONDS",
                                               help="Ingest the sources incrementally in the background this often "
                                               "(ROLESEARCH_SYNC_INTERVAL; 0: only when a wiki pushes a change)"),
    source: Optional[list[str]] = typer.Option(None, "--source", help="KIND:LOCATION, repeatable: the sources the "
                                               "background sync and /admin/reindex read (default: the sources file "
                                               "of ROLESEARCH_SOURCES_FILE, else --corpus)"),
) -> None:
    """Serve the HTTP API under uvicorn (or Ray Serve with --ray); a newly published index version is swapped in by itself."""
    if replicas is not None and replicas < 1:
        fail(f"--replicas must be at least 1, got {replicas}", 2)
    if replicas is not None and ray_address is None:
        fail("--replicas needs --ray (a plain server is one process)", 2)
    s = settings_from(index_dir=index, corpus_dir=corpus, host=host, port=port, sync_interval=sync_every)
    if source:
        from rolesearch.ingest.sources import SourceError

        try:
            s.sources(source)  # a bad spec fails now, not in the first background sync
        except (SourceError, ValueError) as exc:
            fail(str(exc), 2)
    if ray_address is not None and (s.sync_interval > 0 or source):
        fail("--sync-every and --source run in a plain server (each Ray replica would sync on its own)", 2)
    if ray_address is not None:
        _serve_on_ray(s, ray_address, replicas or 2)
        return
    import uvicorn

    from rolesearch.api.access_log import uvicorn_log_config
    from rolesearch.api.app import create_app

    # The app writes its own JSON access lines (with latency); uvicorn's would say the same thing twice.
    # In proxy mode the peer check needs the connection's own address, not one rewritten from X-Forwarded-For.
    uvicorn.run(create_app(s, source_specs=source), host=s.host, port=s.port, log_level="info",
                log_config=uvicorn_log_config(), access_log=False, proxy_headers=s.auth != "proxy")


def _serve_on_ray(s: Settings, address: str, replicas: int) -> None:
    """Run the app as a Ray Serve deployment of `replicas` replicas until Ctrl-C or SIGTERM, then remove it."""
    from rolesearch.api.replicas import run_replicas, stop_replicas, wait_for_stop
    from rolesearch.cluster import ClusterError

    # Replicas may run on other nodes and in other folders: they get absolute paths (on storage all nodes share).
    s = s.model_copy(update={"index_dir": s.index_dir.resolve(), "corpus_dir": s.corpus_dir.resolve()})
    with contextlib.ExitStack() as stack:
        ray_cluster_or_exit(stack, address, replicas)
        try:
            url = run_replicas(s, replicas)
        except ClusterError as exc:
            fail(str(exc))
        typer.echo(f"serving {s.index_dir} on {url} with {replicas} Ray Serve replicas; Ctrl-C stops")
        try:
            wait_for_stop()
        finally:
            stop_replicas()
