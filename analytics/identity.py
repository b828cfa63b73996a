"""Keyed hashes: a reader and a query are stored as HMAC-SHA256 with a secret, never as the raw name."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def keyed_hash(secret: bytes, value: str) -> str:
    """HMAC-SHA256 of value, 32 hex characters: stable for one secret, unlinkable without it."""
    return hmac.new(secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def normalize_query(query: str) -> str:
    """The form queries are counted by: lower case, runs of white space as one space."""
    return " ".join(query.lower().split())


def load_or_create_secret(path: Path) -> bytes:
    """The secret kept in a file readable by its owner only, made (32 random bytes) on first use."""
    path = Path(path)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secret.hex().encode("ascii"))
    finally:
        os.close(fd)
    return secret
