"""`rolesearch versions` and `rolesearch rollback`: the kept index versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import app, fail, os_user, settings_from


@app.command()
def versions(
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON"),
) -> None:
    """List the kept index versions: id, build time, counts, and which one is published."""
    from rolesearch.store.versions import list_versions

    s = settings_from(index_dir=index)
    kept = list_versions(s.index_dir)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(v) for v in kept], indent=2))
        return
    if not kept:
        fail(f"no index versions in {s.index_dir}: run `rolesearch ingest`")
    for v in kept:
        mark = "*" if v.published else " "
        what = f"{v.articles} articles, {v.passages} passages" if v.complete else f"unusable: {v.problem}"
        typer.echo(f"{mark} {v.version}  {v.built_at or '-':25s}  {what}")
    typer.echo("(* published)")


@app.command()
def rollback(
    version: str = typer.Argument(..., help="A version id from `rolesearch versions`"),
    index: Optional[Path] = typer.Option(None, "--index"),
    allow_wider_access: bool = typer.Option(False, "--allow-wider-access", help="Publish it even when it lets more "
                                            "readers see some articles than the published version (audited)"),
) -> None:
    """Publish a kept index version again; running servers swap it in within their reload interval."""
    from rolesearch.store.manifest import StoreError
    from rolesearch.store.versions import rollback as publish_again

    s = settings_from(index_dir=index)
    try:
        previous = publish_again(s.index_dir, version, s.model, allow_wider_access,
                                 f"command line (user {os_user()})")
    except StoreError as exc:
        fail(str(exc))
    typer.echo(f"published version {version} (was {previous or 'none'})")
