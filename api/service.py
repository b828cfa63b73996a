"""What the running service holds: the model and the searcher over the served index version."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from rolesearch.encoder.base import Encoder
from rolesearch.search.access import Reader
from rolesearch.search.filters import Filters
from rolesearch.search.scope import passage_mask, restricted_count
from rolesearch.search.searcher import Searcher
from rolesearch.settings import Settings
from rolesearch.store.manifest import StoreError, current_version

log = logging.getLogger(__name__)
ANONYMOUS_READER = Reader()  # public articles only


class IndexUnavailable(Exception):
    """No index is loaded (none built yet, or it could not be read)."""


@dataclass
class Service:
    """The model, loaded once, and the current searcher, swapped whole when a new version is loaded.

    A request takes `service.searcher` once and uses that object to the end, so a swap never
    changes the index under a request in flight.
    """

    settings: Settings
    embedder: Encoder
    searcher: Searcher | None = None
    load_error: str | None = None
    loaded_at: float | None = None  # Unix time the served searcher was swapped in
    reload_error: str | None = None  # why the last published version could not be swapped in
    _failed_version: str | None = field(default=None, repr=False)  # not retried until CURRENT moves on
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Serialises loads (the watcher and a reindex may both ask), so the last one always follows CURRENT.
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self, version: str | None = None) -> Searcher:
        """Load the published (or named) version and make it the served one."""
        searcher = self.settings.open_searcher(self.embedder, version=version)
        restricted = restricted_count(searcher.index.articles)
        if restricted and self.settings.auth == "off" and "auth" not in self.settings.model_fields_set:
            log.warning("index version %s holds %d restricted article(s) but ROLESEARCH_AUTH is not set: serving "
                        "public articles only, as to an anonymous reader; set ROLESEARCH_AUTH=proxy or token, or "
                        "ROLESEARCH_AUTH=off to let everyone read everything", searcher.index.version, restricted)
        if restricted:
            # The public scope's BM25 statistics (search.index.lexical_for), built before the first anonymous
            # query rather than during it; other group sets are built at their first query.
            searcher.index.lexical_for(passage_mask(searcher.index, ANONYMOUS_READER, Filters()))
        with self._lock:
            self.searcher = searcher
            self.load_error = None
            self.reload_error = None
            self.loaded_at = time.time()
        return searcher

    @property
    def version(self) -> str | None:
        """The served version id, if any."""
        searcher = self.searcher
        return searcher.index.version if searcher else None

    def reload(self) -> bool:
        """Swap in the published version if it is not the served one; True when it swapped.

        A version that cannot be loaded leaves the served one in place (reason in reload_error);
        requests already holding the old searcher finish on it.
        """
        with self._load_lock:
            published = current_version(self.settings.index_dir)
            if published is None or published in (self.version, self._failed_version):
                return False
            try:
                self.load(published)
            except StoreError as exc:
                self._failed_version = published
                self.reload_error = f"version {published}: {exc}"
                if self.searcher is None:
                    self.load_error = str(exc)
                return False
            return True

    def try_load(self) -> None:
        """Load at start-up; keep the reason if there is no usable index, rather than failing to start."""
        try:
            self.load()
        except StoreError as exc:
            self.load_error = str(exc)

    def current(self) -> Searcher:
        """The searcher to use for one request."""
        searcher = self.searcher
        if searcher is None:
            raise IndexUnavailable(self.load_error or "no index loaded")
        return searcher
