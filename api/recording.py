"""Search analytics in the server: the writer started with the app, and the events made from responses.

Nothing here waits for the disk: an event goes on the writer's queue (rolesearch.analytics.recorder), and a
failure to write it is counted in /metrics, never raised into a request.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from rolesearch.analytics.events import Click, Judgement, SearchEvent
from rolesearch.analytics.identity import keyed_hash, load_or_create_secret, normalize_query
from rolesearch.analytics.recorder import Recorder
from rolesearch.api.auth import Caller
from rolesearch.api.metrics import Metrics
from rolesearch.api.models import AskResponse, SearchRequest, SearchResponse
from rolesearch.settings import Settings

log = logging.getLogger("rolesearch.analytics")


@dataclass
class Recording:
    """The running recorder and how events are written: the HMAC key, whether query text is kept."""

    recorder: Recorder
    secret: bytes
    query_text: bool
    min_dense: float  # the answer threshold: a /search with no hit at or above it counts as not answered

    def reader(self, caller: Caller, peer: str | None) -> str | None:
        """The reader as a keyed hash: the user the proxy or token names, else the client address."""
        who = f"user:{caller.user}" if caller.user else (f"addr:{peer}" if peer else None)
        return keyed_hash(self.secret, who) if who else None

    def search(self, endpoint: str, req: SearchRequest, resp: SearchResponse | AskResponse,
               reader: str | None) -> str:
        """Queue one /search or /ask; the search id clicks and judgements refer to."""
        sid = uuid.uuid4().hex
        filters = {k: v for k, v in (("article", req.article), ("tag", req.tag), ("source", req.source)) if v}
        if isinstance(resp, AskResponse):
            answered, abstained, answer = resp.answer.answerable, not resp.answer.answerable, resp.answer.text
            evidence = tuple(dict.fromkeys(pid for r in resp.answer.roles for pid in r.evidence))
        else:
            dense = [h.scores.get("dense") for h in resp.hits]
            if req.mode == "lexical":  # no dense scores to judge by: any hit answers
                answered = bool(resp.hits)
            else:
                answered = any(d is not None and d >= self.min_dense for d in dense)
            abstained, answer, evidence = None, None, ()
        self.recorder.record(SearchEvent(
            sid, time.time(), endpoint, req.q if self.query_text else None,
            keyed_hash(self.secret, normalize_query(req.q)), req.mode, filters,
            tuple(h.passage_id for h in resp.hits), answered, abstained, answer, evidence, resp.took_ms,
            resp.index_version, reader))
        return sid

    def click(self, search_id: str, rank: int, reader: str | None) -> bool:
        """Queue a click; False when it was dropped (queue full)."""
        return self.recorder.record(Click(search_id, time.time(), rank, reader))

    def judge(self, search_id: str, rank: int | None, up: bool, comment: str | None, reader: str | None) -> bool:
        """Queue a thumbs up or down on the answer (rank None) or a hit; False when it was dropped."""
        return self.recorder.record(Judgement(search_id, time.time(), rank, 1 if up else -1, comment or None, reader))

    def close(self) -> None:
        self.recorder.close()


def stamped(recording: Recording | None, endpoint: str, req: SearchRequest, resp: SearchResponse | AskResponse,
            caller: Caller, peer: str | None):
    """The response with its search id, the search queued for analytics (the response as is when it is off)."""
    if recording is None:
        return resp
    return resp.model_copy(update={"search_id": recording.search(endpoint, req, resp, recording.reader(caller, peer))})


def start_recording(settings: Settings, metrics: Metrics) -> Recording | None:
    """The recorder these settings ask for, started; None when analytics is off or its key cannot be had."""
    if settings.analytics != "on":
        return None
    path = settings.analytics_path()
    try:
        secret = (settings.analytics_secret.get_secret_value().encode() if settings.analytics_secret
                  else load_or_create_secret(path.with_name("analytics.secret")))
    except (OSError, ValueError) as exc:  # a read-only index folder: serve, record nothing, say why
        log.warning("analytics off: no HMAC key (%s)", exc)
        return None
    recorder = Recorder(path, settings.analytics_retention_days,
                        on_written=lambda kind, n: metrics.analytics_written.labels(kind).inc(n),
                        on_dropped=lambda reason, n: metrics.analytics_dropped.labels(reason).inc(n))
    recorder.start()
    return Recording(recorder, secret, settings.analytics_query_text, settings.answer_min_dense)
