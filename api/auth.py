"""Who is calling: nobody in particular (auth off), the user an authenticating proxy names, or a token's owner.

Only api/ knows about headers and tokens; search/ sees the result as a search.access.Reader.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

from rolesearch.search.access import Reader


class CallerRefused(Exception):
    """The request may not be answered for anyone (an untrusted peer, an unknown token); status says how."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Caller:
    """The person or script a request is answered for, and their groups; `everything` when auth is off."""

    user: str | None = None
    groups: frozenset[str] = frozenset()
    everything: bool = False

    @property
    def reader(self) -> Reader:
        """What search needs to know of the caller."""
        return Reader(self.groups, self.everything)


ANYONE = Caller(everything=True)  # ROLESEARCH_AUTH=off
ANONYMOUS = Caller()  # no identity given: public articles only


def split_groups(value: str | None) -> frozenset[str]:
    """Group names from a comma-separated header value."""
    return frozenset(g.strip() for g in (value or "").split(",") if g.strip())


def is_trusted(peer: str | None, networks: list[IPv4Network | IPv6Network]) -> bool:
    """Whether the connection's address lies in one of the trusted proxies' networks."""
    if not peer:
        return False
    try:
        addr = ip_address(peer)
    except ValueError:
        return False
    if getattr(addr, "ipv4_mapped", None):  # ::ffff:10.0.0.5 on a dual-stack socket is 10.0.0.5
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def proxy_caller(peer: str | None, user: str | None, groups: str | None,
                 networks: list[IPv4Network | IPv6Network]) -> Caller:
    """The caller named by proxy headers, believed only from a trusted peer; any other peer is refused."""
    if not is_trusted(peer, networks):
        raise CallerRefused(403, f"requests must come through the authenticating proxy: peer {peer or 'unknown'} "
                                 "is not in ROLESEARCH_TRUSTED_PROXIES")
    user = (user or "").strip() or None
    return Caller(user, split_groups(groups)) if user or groups else ANONYMOUS


def forwarded_hosts(values: list[str]) -> set[str]:
    """The addresses named in X-Forwarded-For header values (ports and IPv6 brackets dropped)."""
    out = set()
    for value in values:
        for part in value.split(","):
            host = part.strip()
            if host.startswith("[") and "]" in host:
                host = host[1:host.index("]")]
            elif host.count(":") == 1:
                host = host.split(":")[0]
            if host:
                out.add(host)
    return out


SECRET_HEADER = "X-RoleSearch-Secret"


def secret_matches(given: str | None, expected: str) -> bool:
    """Whether the header carries the shared secret, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def check_proxy_secret(given: str | None, expected: str | None, asserts_identity: bool) -> None:
    """With ROLESEARCH_PROXY_SECRET set, identity headers are believed only beside it; a wrong secret is refused.

    A request asserting nobody (no identity headers, no secret) passes: it is answered as anonymous."""
    if not expected or (given is None and not asserts_identity):
        return
    if not secret_matches(given, expected):
        raise CallerRefused(403, f"identity headers need the proxy's shared secret in {SECRET_HEADER} "
                                 "(ROLESEARCH_PROXY_SECRET): missing or wrong")
