"""`rolesearch token add|remove|list`: bearer tokens for ROLESEARCH_AUTH=token."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import app, fail, settings_from

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for ROLESEARCH_AUTH=token (stored as hashes).")
app.add_typer(token_app, name="token")


@token_app.command("add")
def token_add(
    name: str = typer.Argument(..., help="Who or what the token is for"),
    group: list[str] = typer.Option([], "--group", help="An access group the token reads (repeatable)"),
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """Create a token, store its hash, and print the token once."""
    from rolesearch.api.tokens import TokenFileError, add_token

    path = file or settings_from().auth_tokens_file
    try:
        token = add_token(path, name, group)
    except TokenFileError as exc:
        fail(str(exc))
    typer.echo(token)
    typer.secho(f"token {name!r} added to {path} (groups: {', '.join(sorted(set(group))) or 'none: public only'}); "
                "it is not stored and cannot be shown again", err=True)


@token_app.command("remove")
def token_remove(
    name: str = typer.Argument(...),
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """Revoke the token called NAME."""
    from rolesearch.api.tokens import TokenFileError, remove_token

    path = file or settings_from().auth_tokens_file
    try:
        if not remove_token(path, name):
            fail(f"no token named {name!r} in {path}")
    except TokenFileError as exc:
        fail(str(exc))
    typer.echo(f"token {name!r} removed")


@token_app.command("list")
def token_list(
    file: Optional[Path] = typer.Option(None, "--file", help="Token file (default ROLESEARCH_AUTH_TOKENS_FILE)"),
) -> None:
    """The tokens' names, groups and creation times (never the tokens)."""
    from rolesearch.api.tokens import TokenFileError, read_tokens

    path = file or settings_from().auth_tokens_file
    try:
        entries = read_tokens(path)
    except TokenFileError as exc:
        fail(str(exc))
    for e in entries:
        typer.echo(f"{e.name}\t{','.join(e.groups) or '-'}\t{e.created or '-'}")
