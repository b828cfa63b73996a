"""Background sync: incremental ingests of the configured sources, on a timer (`--sync-every`) and when a wiki
pushes a change (POST /admin/notify), one at a time, hot-swapped in when they publish.

One thread waits for the next reason to build: the interval passing, or a notification. Notifications that
arrive close together are coalesced into one build (their page ids passed on in BuildOptions.notified_pages).
A build takes the index's build lock (waiting for a `rolesearch ingest` or a reindex to finish), and a build
that changes nothing publishes nothing. A failed build leaves the served version as it is, is logged, and
is retried after a backoff that doubles up to MAX_BACKOFF, keeping the page ids it was given.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, replace

from rolesearch.api.metrics import Metrics
from rolesearch.api.models import SyncOut
from rolesearch.api.service import Service
from rolesearch.ingest.pipeline import BuildOptions, build
from rolesearch.ingest.sources.folder import FolderSource
from rolesearch.store.manifest import now_iso

log = logging.getLogger(__name__)

COALESCE = 0.3  # seconds a notification waits for more of its burst (a bulk move notifies once per page)
COALESCE_MAX = 2.0  # but a steady stream of notifications still syncs this often
MAX_BACKOFF = 300.0
FIRST_BACKOFF = 5.0  # after a failure with no interval set (push only)


@dataclass(frozen=True)
class SyncStatus:
    """The last sync: when it started and finished, how long it took, what changed, and why it failed."""

    state: str = "idle"  # idle, running, succeeded, failed
    trigger: str | None = None  # interval, notify
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    pages_changed: int | None = None  # articles added, changed or removed by the last successful sync
    version: str | None = None  # the version published (or kept) by the last successful sync
    error: str | None = None  # why the last sync failed (None once one succeeds again)
    last_success_at: float | None = None  # Unix time
    failures: int = 0  # consecutive failures


class Syncer:
    """Runs the background syncs of one server; start() launches its thread, stop() ends it."""

    def __init__(
        self, service: Service, metrics: Metrics | None, interval: float, source_specs: list[str] | None = None
    ):
        self.service, self.metrics, self.interval = service, metrics, interval
        self.source_specs = source_specs or None
        self.status = SyncStatus()
        self._pending: set[int] = set()
        self._notified_at: float | None = None  # first notification of the burst not yet synced
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the sync thread (once); with an interval the first sync runs at once."""
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sync", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end after the build under way, and wait for it."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def notify(self, page_ids: list[int]) -> None:
        """Sync soon, fetching these page ids too; bursts are coalesced into one build."""
        with self._wake:
            self._pending.update(page_ids)
            if self._notified_at is None:
                self._notified_at = time.monotonic()
            self._last_notify = time.monotonic()
            self._wake.notify_all()
        if self.metrics is not None:
            self.metrics.sync_notified.inc(max(len(page_ids), 1))
        self.start()

    def _next_wait(self) -> float | None:
        """Seconds until the next sync is due, None for never (no interval, nothing pushed)."""
        now = time.monotonic()
        if self.status.failures:
            backoff = min(MAX_BACKOFF, (self.interval or FIRST_BACKOFF) * 2 ** (self.status.failures - 1))
            return max(0.0, self._last_attempt + backoff - now)
        if self._notified_at is not None:
            # Wait for the burst to settle, but no longer than COALESCE_MAX after its first notification.
            return max(0.0, min(self._last_notify + COALESCE, self._notified_at + COALESCE_MAX) - now)
        if self.interval > 0:
            return max(0.0, self._last_attempt + self.interval - now)
        return None

    def _loop(self) -> None:
        self._last_attempt = time.monotonic() - (self.interval or 0.0)  # an interval syncs once at start
        self._last_notify = time.monotonic()
        while True:
            with self._wake:
                while not self._stop:
                    wait = self._next_wait()
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(wait)
                if self._stop:
                    return
                pages = frozenset(self._pending)
                trigger = "notify" if self._notified_at is not None else "interval"
                self._pending.clear()
                self._notified_at = None
            self._last_attempt = time.monotonic()
            if not self.run_once(pages, trigger):
                with self._wake:
                    self._pending |= pages  # asked for again at the retry

    def run_once(self, pages: frozenset[int] = frozenset(), trigger: str = "interval") -> bool:
        """One incremental build of the sources, swapped in when it publishes; False when it failed."""
        s = self.service.settings
        t0 = time.perf_counter()
        self.status = replace(self.status, state="running", trigger=trigger, started_at=now_iso(), finished_at=None)
        try:
            sources = s.sources(self.source_specs) or [FolderSource(str(s.corpus_dir))]
            options = BuildOptions(
                chunking=s.chunking(),
                ann=s.ann_params(),
                roles=s.role_config(),
                access=s.access_map(),
                cache_max_entries=s.cache_max_entries,
                wait_for_lock=True,
                notified_pages=pages,
                keep_unchanged=True,
            )
            summary = build(sources, s.index_dir, self.service.embedder, options)
        except Exception as exc:
            seconds = time.perf_counter() - t0
            failures = self.status.failures + 1
            log.warning("sync failed (attempt %d, served version kept): %s", failures, exc, exc_info=True)
            self.status = replace(
                self.status,
                state="failed",
                finished_at=now_iso(),
                seconds=round(seconds, 3),
                error=str(exc) or type(exc).__name__,
                failures=failures,
            )
            self._count("failed", seconds, 0)
            return False
        seconds = time.perf_counter() - t0
        if summary.published:
            self.service.reload()  # now, not at the watcher's next poll
        changed = summary.articles["added"] + summary.articles["changed"] + summary.articles["removed"]
        if summary.published:
            log.info("sync published %s (%d pages changed) in %.2fs", summary.version, changed, seconds)
        self.status = replace(
            self.status,
            state="succeeded",
            finished_at=now_iso(),
            seconds=round(seconds, 3),
            pages_changed=changed,
            version=summary.version,
            error=None,
            last_success_at=time.time(),
            failures=0,
        )
        self._count("published" if summary.published else "unchanged", seconds, changed)
        return True

    def _count(self, outcome: str, seconds: float, changed: int) -> None:
        if self.metrics is not None:
            self.metrics.syncs.labels(outcome).inc()
            self.metrics.sync_pages_changed.inc(changed)
            self.metrics.rebuild_seconds.labels(outcome).observe(seconds)


def sync_out(syncer: Syncer) -> SyncOut:
    """The sync's status as /healthz and /admin/notify show it."""
    st = syncer.status
    last = st.last_success_at
    return SyncOut(
        state=st.state,
        trigger=st.trigger,
        interval=syncer.interval,
        started_at=st.started_at,
        finished_at=st.finished_at,
        seconds=st.seconds,
        pages_changed=st.pages_changed,
        last_success_at=None
        if last is None
        else dt.datetime.fromtimestamp(last, dt.timezone.utc).isoformat(timespec="seconds"),
        error=st.error,
        failures=st.failures,
    )
