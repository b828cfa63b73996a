"""Bearer tokens for scripts (ROLESEARCH_AUTH=token): a JSON file of token hashes, each with a name and groups.

    {"tokens": [{"name": "nightly-report", "sha256": "<hex>", "groups": ["hr"], "created": "..."}]}

Only hashes are stored: a leaked file grants nothing. Tokens are 256 random bits, so a plain SHA-256 (no salt,
no slow hash) cannot be reversed; lookup is by hash, so timing says nothing about a guessed token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path


class TokenFileError(ValueError):
    """The token file cannot be read or has the wrong shape; the message says which and where."""


@dataclass(frozen=True)
class TokenEntry:
    """One token as stored: who it is for, the hash of the secret, the groups it reads."""

    name: str
    sha256: str
    groups: tuple[str, ...]
    created: str | None = None


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> list[TokenEntry]:
    """The entries of a token file (none when it does not exist)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise TokenFileError(f"token file {path} cannot be read: {exc}") from exc
    try:
        return [TokenEntry(str(t["name"]), str(t["sha256"]).lower(), tuple(str(g) for g in t.get("groups", ())),
                           t.get("created")) for t in data["tokens"]]
    except (KeyError, TypeError) as exc:
        raise TokenFileError(f'token file {path} must be {{"tokens": [{{"name", "sha256", "groups"}}, ...]}}') from exc


def write_tokens(path: Path, entries: list[TokenEntry]) -> None:
    """Replace the token file atomically, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = {"tokens": [{"name": e.name, "sha256": e.sha256, "groups": list(e.groups), "created": e.created}
                       for e in entries]}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


def add_token(path: Path, name: str, groups: list[str]) -> str:
    """Create a token for name with groups, store its hash, and return the token (shown once, never stored)."""
    entries = read_tokens(path)
    if any(e.name == name for e in entries):
        raise TokenFileError(f"a token named {name!r} exists already in {path}; remove it first")
    token = secrets.token_urlsafe(32)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_tokens(path, entries + [TokenEntry(name, hash_token(token), tuple(sorted(set(groups))), created)])
    return token


def remove_token(path: Path, name: str) -> bool:
    """Delete the token called name; False when there is none."""
    entries = read_tokens(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    write_tokens(path, kept)
    return True


class TokenStore:
    """The token file as the server reads it, re-read when it changes (a new token works without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._by_hash: dict[str, TokenEntry] = {}
        self._lock = threading.Lock()
        self._refresh()

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and (stamp is not None or not self._by_hash):
                return
            self._by_hash = {e.sha256: e for e in read_tokens(self.path)}
            self._stamp = stamp

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry of a presented token, or None when it is not one of ours."""
        self._refresh()
        return self._by_hash.get(hash_token(token))
