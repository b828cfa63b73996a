"""The writer: events queue up in memory and one background thread writes them to SQLite in batches.

A request only puts an event on a bounded queue (microseconds); it never waits for the disk. When the
queue is full or a batch cannot be written (disk full, database locked, unreadable file), the events are
dropped and counted by reason, and searches go on answering.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rolesearch.analytics.database import open_database, prune
from rolesearch.analytics.events import INSERTS, Event

log = logging.getLogger("rolesearch.analytics")
PRUNE_EVERY_S = 3600.0
_STOP = object()


def drop_reason(exc: BaseException) -> str:
    """A short label for why a batch could not be written (the /metrics label)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in text or "busy" in text:
        return "locked"
    if name == "SQLITE_FULL" or "full" in text:
        return "disk_full"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text or isinstance(exc, OSError):
        return "unavailable"
    return "error"


class Recorder:
    """Queue events from requests; write them in batches from one thread; prune rows past the retention."""

    def __init__(self, path: Path, retention_days: int, *, on_written: Callable[[str, int], None] | None = None,
                 on_dropped: Callable[[str, int], None] | None = None, batch: int = 500, wait_s: float = 0.2,
                 queue_max: int = 10_000, busy_ms: int = 500) -> None:
        self.path = Path(path)
        self.retention_s = retention_days * 86400.0
        self._on_written = on_written or (lambda kind, n: None)
        self._on_dropped = on_dropped or (lambda reason, n: None)
        self._batch, self._wait_s, self._busy_ms = batch, wait_s, busy_ms
        self._queue: queue.Queue = queue.Queue(maxsize=queue_max)
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._pruned_at = 0.0

    def start(self) -> None:
        """Start the writer thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="analytics-writer", daemon=True)
            self._thread.start()

    def record(self, event: Event) -> bool:
        """Queue one event without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            self._on_dropped("queue_full", 1)
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event queued so far is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread and close the database."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._wait_s)
            except queue.Empty:
                self._maybe_prune()
                continue
            batch = [first]
            while len(batch) < self._batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(e is _STOP for e in batch)
            events = [e for e in batch if e is not _STOP]
            try:
                if events:
                    self._write(events)
                self._maybe_prune()
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_database(self.path, self._busy_ms)
        return self._conn

    def _write(self, events: list[Event]) -> None:
        by_table: dict[str, list[tuple]] = {}
        try:
            for e in events:
                by_table.setdefault(e.table, []).append(e.row())
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table, rows in by_table.items():
                    conn.executemany(INSERTS[table], rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the write's own error is the one to report
                raise
        except Exception as exc:  # noqa: BLE001 - any failure drops the batch; the thread lives on for the next
            reason = drop_reason(exc) if isinstance(exc, (sqlite3.Error, OSError)) else "error"
            log.warning("analytics: %d events dropped (%s): %s", len(events), reason, exc)
            self._on_dropped(reason, len(events))
            if reason in ("unavailable", "error") and self._conn is not None:
                self._conn.close()  # opened again for the next batch
                self._conn = None
            return
        for table, rows in by_table.items():
            self._on_written(table, len(rows))

    def _maybe_prune(self) -> None:
        now = time.time()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        try:
            prune(self._connection(), now - self.retention_s)
        except Exception as exc:  # noqa: BLE001 - pruning waits for the next hour; writing goes on
            log.warning("analytics: pruning failed: %s", exc)
