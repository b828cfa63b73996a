"""The service's Prometheus metrics, held in a registry of their own so each app (and test) counts apart."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from rolesearch.search.index import SearchIndex

# Request latency buckets in seconds: a search takes ~5-50 ms here, a page or /metrics well under that.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An index rebuild embeds only what changed: seconds for a small edit, minutes for a new model.
REBUILD_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path, so scanners cannot blow up the series


class Metrics:
    """Request, index and rebuild metrics of one app.

    Reload and rebuild code sets the index ones: `index_loaded(index, at)` after a swap,
    `rebuild_seconds.labels(outcome).observe(s)` after a build ("published", "unchanged" or "failed").
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rolesearch_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=r,
        )
        self.latency = Histogram(
            "rolesearch_http_request_duration_seconds", "HTTP request latency by method, route template and status",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.index = Info("rolesearch_index", "The served index version, when it was built and the model", registry=r)
        # No article or passage counts: /metrics answers anyone who reaches it, and whole-index counts minus a
        # reader's /healthz counts would tell how many restricted articles exist (docs/permissions.md).
        self.index_loaded_at = Gauge(
            "rolesearch_index_last_reload_timestamp_seconds", "Unix time the served index version was loaded",
            registry=r,
        )
        self.rebuild_seconds = Histogram(
            "rolesearch_index_rebuild_duration_seconds", "Duration of index rebuilds by outcome",
            ["outcome"], buckets=REBUILD_BUCKETS, registry=r,
        )
        self.syncs = Counter("rolesearch_sync", "Background syncs by outcome (published, unchanged, failed)",
                             ["outcome"], registry=r)
        self.sync_pages_changed = Counter("rolesearch_sync_pages_changed", "Pages added, changed or removed by "
                                          "background syncs", registry=r)
        self.sync_notified = Counter("rolesearch_sync_notified_pages", "Page changes pushed by POST /admin/notify",
                                     registry=r)
        self.sync_since_success = Gauge("rolesearch_sync_seconds_since_success", "Seconds since the last successful "
                                        "background sync (-1: none yet)", registry=r)

        # Search analytics (api/recording.py): rows written by table, and events dropped instead of failing a search.
        self.analytics_written = Counter(
            "rolesearch_analytics_events", "Analytics rows written, by table (searches, clicks, feedback)",
            ["kind"], registry=r,
        )
        self.analytics_dropped = Counter(
            "rolesearch_analytics_events_dropped", "Analytics events dropped, by reason (queue_full, locked, "
            "disk_full, unavailable, error); the search itself was answered", ["reason"], registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def index_loaded(self, index: SearchIndex, at: float) -> None:
        """Record the index version now served and when it was loaded (Unix time)."""
        m = index.manifest
        self.index.info({"version": m.version, "built_at": m.built_at, "model": m.model})
        self.index_loaded_at.set(at)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
