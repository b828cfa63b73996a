"""POST /admin/reindex's work: the incremental ingest run in a background thread with the loaded model."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from rolesearch.api.metrics import Metrics
from rolesearch.api.service import Service
from rolesearch.ingest.pipeline import build_index
from rolesearch.store.manifest import now_iso

log = logging.getLogger(__name__)


class ReindexRunning(Exception):
    """A reindex is already under way."""


@dataclass(frozen=True)
class ReindexStatus:
    """Where the last reindex is: state, phase, embedding progress, and its summary or error."""

    state: str = "idle"  # idle, running, succeeded, failed
    phase: str | None = None  # waiting, reading, embedding, writing, publishing
    started_at: str | None = None
    finished_at: str | None = None
    embedded: int = 0
    to_embed: int = 0
    summary: dict | None = None
    error: str | None = None


class Reindexer:
    """Runs one reindex at a time and keeps its status for GET /admin/reindex."""

    def __init__(self, service: Service, metrics: Metrics | None = None, source_specs: list[str] | None = None):
        self.service = service
        self.source_specs = source_specs or None
        self.metrics = metrics
        self._status = ReindexStatus()
        self._lock = threading.Lock()

    @property
    def status(self) -> ReindexStatus:
        return self._status

    def start(self) -> ReindexStatus:
        """Start a reindex in the background; ReindexRunning if one is under way."""
        with self._lock:
            if self._status.state == "running":
                raise ReindexRunning("a reindex is already running; follow it at GET /admin/reindex")
            self._status = ReindexStatus(state="running", phase="waiting", started_at=now_iso())
        threading.Thread(target=self._run, name="reindex", daemon=True).start()
        return self._status

    def _observe(self, outcome: str, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.rebuild_seconds.labels(outcome).observe(time.perf_counter() - t0)

    def _update(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _run(self) -> None:
        s = self.service.settings
        t0 = time.perf_counter()
        try:
            # Waits for a build started from the command line rather than failing: that one finishes first.
            summary = build_index(
                s.corpus_dir, s.index_dir, self.service.embedder, s.chunking(),
                wait_for_lock=True, cache_max_entries=s.cache_max_entries, roles=s.role_config(),
                access=s.access_map(),
                ann_params=s.ann_params(),
                sentence_params=s.sentence_params(), sentence_embedder=s.sentence_embedder(self.service.embedder),
                on_phase=lambda name: self._update(phase=name),
                on_progress=lambda done, total: self._update(embedded=done, to_embed=total),
                sources=s.sources(self.source_specs),
            )
        except Exception as exc:  # noqa: BLE001 - any failure is reported, and the served index stays as it was
            log.exception("reindex failed")
            self._observe("failed", t0)
            self._update(state="failed", finished_at=now_iso(), error=str(exc) or type(exc).__name__)
            return
        self._observe("published", t0)
        # Swap now rather than at the watcher's next poll.
        self.service.reload()
        self._update(state="succeeded", phase=None, finished_at=now_iso(), summary=summary.to_dict())
