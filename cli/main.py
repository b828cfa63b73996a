"""The `rolesearch` command: every command group registered on one typer app."""

from __future__ import annotations

import sys

# Each module registers its commands on the app when imported.
from rolesearch.cli import ingest, query, serve, versions, tokens, evaluate, analytics  # noqa: F401  # isort: skip  (the order --help lists them in)
from rolesearch.cli.app import LOCAL_RAY, app

__all__ = ["app", "main", "with_ray_default"]


def with_ray_default(argv: list[str]) -> list[str]:
    """argv with a bare `--ray` (last, or before another option) given the value "local"; click has no optional values."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(LOCAL_RAY)
    return out


def main() -> None:
    """The `rolesearch` console script."""
    app(args=with_ray_default(sys.argv[1:]))
