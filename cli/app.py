"""The typer app every command module registers on, and what they share: settings from options, failing with a message."""

from __future__ import annotations

import contextlib
import os

import typer

from rolesearch.settings import Settings

LOCAL_RAY = "local"  # `--ray` alone: a local cluster started for the command and stopped after it (as ray.init says)
RAY_HELP = ("Run on Ray: ADDRESS as ray.init takes it (auto, host:6379, ray://host:10001); alone, a local cluster "
            "started here and stopped at the end. Needs pip install -e '.\\[scale]'")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search and answers over ML role articles.")


def settings_from(**overrides) -> Settings:
    """Settings from the environment with the given command-line values (None: unset) on top; bad ones exit 2."""
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:  # e.g. ROLESEARCH_AUTH=proxy without ROLESEARCH_TRUSTED_PROXIES
        fail("settings: " + "; ".join(e["msg"] for e in exc.errors()), 2)


def fail(message: str, code: int = 1) -> None:
    """Print message as an error and exit with code."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def ray_cluster_or_exit(stack: contextlib.ExitStack, address: str, cpus: int):
    """Connect to the Ray cluster at address ("local": start one here) for the stack's lifetime, or fail."""
    from rolesearch.cluster import ClusterError, ClusterOptions, ray_cluster

    local = address == LOCAL_RAY
    # A local cluster gets at least the CPUs asked for, so the actor pool or the replicas can all start.
    options = ClusterOptions(None, max(os.cpu_count() or 1, cpus)) if local else ClusterOptions(address)
    try:
        stack.enter_context(ray_cluster(options))
    except ClusterError as exc:
        fail(str(exc))


def os_user() -> str:
    """Who ran the command, as the audit log records a forced widening of access."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
