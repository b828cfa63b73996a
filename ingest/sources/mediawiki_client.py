"""A polite client for one wiki's MediaWiki Action API (api.php), as the API etiquette asks.

One request at a time, at most `rate` a second; every request carries `maxlag` and a User-Agent
naming rolesearch and a contact; a `maxlag` error, a 429 or a 5xx waits (Retry-After when the wiki
says how long) and is retried with exponential backoff, a bounded number of times. Anything the
client cannot turn into an API answer (a timeout after the retries, an HTML error page, a URL that
is not api.php) is a SourceError naming the URL: the sync fails and nothing is published.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from importlib import metadata

import httpx

from rolesearch.ingest.sources.base import SourceError

MAX_WAIT = 120.0  # seconds: a Retry-After longer than this is not waited for in full


def user_agent(contact: str | None) -> str:
    """rolesearch/VERSION (CONTACT), as https://meta.wikimedia.org/wiki/User-Agent_policy asks."""
    try:
        version = metadata.version("rolesearch")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"rolesearch/{version} ({contact})" if contact else f"rolesearch/{version}"


class WikiApi:
    """Requests to one api.php; `requests` counts those sent (retries included)."""

    def __init__(self, url: str, *, contact: str | None = None, rate: float = 5.0, timeout: float = 10.0,
                 retries: int = 4, backoff: float = 1.0, maxlag: int = 5):
        self.url, self.rate, self.retries, self.backoff, self.maxlag = url, rate, retries, backoff, maxlag
        self.client = httpx.Client(timeout=timeout, follow_redirects=True,
                                   headers={"User-Agent": user_agent(contact), "Accept": "application/json"})
        self.requests = 0
        self._next = 0.0

    def close(self) -> None:
        self.client.close()

    def call(self, params: dict, post: bool = False) -> dict:
        """One API call (JSON, formatversion 2); SourceError when it cannot be answered."""
        full = {"format": "json", "formatversion": "2", "maxlag": str(self.maxlag), "errorformat": "plaintext"}
        full |= {k: _value(v) for k, v in params.items()}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            self._wait_turn()
            self.requests += 1
            try:
                r = self.client.post(self.url, data=full) if post else self.client.get(self.url, params=full)
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                if last:
                    raise SourceError(f"MediaWiki API {self.url}: {type(exc).__name__} after "
                                      f"{self.retries + 1} attempts ({exc})") from exc
                self._sleep(self._backoff(attempt))
                continue
            if r.status_code == 429 or r.status_code >= 500:
                if last:
                    raise SourceError(f"MediaWiki API {self.url} answered HTTP {r.status_code} "
                                      f"{self.retries + 1} times; giving up")
                self._sleep(_retry_after(r) or self._backoff(attempt))
                continue
            data = self._json(r)
            error = data.get("error") or (data.get("errors") or [None])[0]
            if isinstance(error, dict) and error.get("code") == "maxlag" and not last:
                # The wiki's database replicas lag: it asks bots to wait (Retry-After) and come back.
                self._sleep(_retry_after(r) or 5.0)
                continue
            if isinstance(error, dict):
                raise SourceError(_error_message(self.url, error))
            return data
        raise AssertionError("unreachable")

    def query(self, params: dict) -> Iterator[dict]:
        """Each answer of an action=query, continuation followed to the end."""
        cont: dict = {}
        while True:
            data = self.call({"action": "query", **params, **cont})
            yield data
            if "continue" not in data:
                return
            cont = data["continue"]

    def query_pages(self, params: dict) -> Iterator[list[dict]]:
        """The pages of an action=query batch by batch; a page split over continued answers (its revisions
        came in a later one) is merged, and a batch is handed on once MediaWiki marks it complete."""
        pages: dict = {}
        for data in self.query(params):
            for page in (data.get("query") or {}).get("pages") or []:
                key = page.get("pageid") or ("title", page.get("title"))
                have = pages.setdefault(key, {})
                revisions = have.get("revisions", []) + page.get("revisions", [])
                have.update(page)
                if revisions:
                    have["revisions"] = revisions
            if data.get("batchcomplete") or "continue" not in data:
                yield list(pages.values())
                pages = {}

    def login(self, user: str, password_env: str) -> None:
        """Log in with a bot password (action=login); the password is read from the environment, never logged."""
        password = os.environ.get(password_env)
        if not password:
            raise SourceError(f"MediaWiki API {self.url}: the environment variable {password_env} (the source's "
                              f"password_env) holding {user}'s bot password is not set")
        data = self.call({"action": "query", "meta": "tokens", "type": "login"})
        token = ((data.get("query") or {}).get("tokens") or {}).get("logintoken")
        if not token:
            raise SourceError(f"MediaWiki API {self.url} gave no login token")
        data = self.call({"action": "login", "lgname": user, "lgpassword": password, "lgtoken": token}, post=True)
        result = data.get("login") or {}
        if result.get("result") != "Success":
            reason = result.get("reason") or result.get("result") or "no reason given"
            if isinstance(reason, dict):
                reason = reason.get("text") or reason.get("code")
            raise SourceError(f"MediaWiki login as {user!r} at {self.url} failed ({reason}): check the source's "
                              f"user and the bot password in {password_env} (password_env)")

    def _json(self, r: httpx.Response) -> dict:
        kind = r.headers.get("content-type", "")
        if r.status_code != 200 or "json" not in kind:
            head = " ".join(r.text[:120].split())
            raise SourceError(f"{self.url} is not a MediaWiki API: it answered HTTP {r.status_code} "
                              f"({kind or 'no content type'}), not JSON: {head!r}")
        try:
            data = r.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.url} answered malformed JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise SourceError(f"{self.url} is not a MediaWiki API: its JSON is not an object")
        return data

    def _wait_turn(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        if self._next > now:
            self._sleep(self._next - now)
        self._next = max(now, self._next) + 1.0 / self.rate

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * 2 ** attempt, MAX_WAIT)

    def _sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, MAX_WAIT))


def _value(v) -> str:
    if isinstance(v, (list, tuple, set, frozenset)):
        return "|".join(str(x) for x in v)
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_message(url: str, error: dict) -> str:
    code = error.get("code", "error")
    info = error.get("info") or error.get("text") or ""
    if code == "readapidenied":
        return (f"MediaWiki API {url} refuses anonymous reading (readapidenied): give the source a `user` "
                f"and a `password_env` holding a bot password")
    return f"MediaWiki API {url} answered an error: {code}: {info}"
