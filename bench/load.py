"""Load test of a running rolesearch server over loopback: latency at a fixed rate, and throughput.

    .venv/bin/python bench/load.py --url http://127.0.0.1:8000     # a server you started
    .venv/bin/python bench/load.py --start                          # starts `rolesearch serve`, then stops it

Phase 1 sends GET /search at a fixed rate (default 40 requests/s for 20 s), open loop: each request
leaves at its scheduled time whether or not earlier ones have answered, and its latency counts from
that time, so a stalled server cannot hide its queue. Phase 2 runs 8 clients back to back for a while
and reports the requests/s they sustain. Each response carries `took_ms`, the server's own search
time for that request, so the in-process latency from the same run is printed beside the HTTP one.
Only loopback addresses are accepted, and both phases are bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "questions.jsonl"
MAX_REQUESTS = 20_000  # whatever the flags say
TIMEOUT_S = 10.0
FALLBACK_QUERIES = [
    "who owns model rollback?", "who sets up drift monitoring?", "what does an ML platform engineer do?",
    "who builds features for a model?", "salary of an MLOps engineer", "who is responsible for CI/CD for ML?",
]
VARIATIONS = ["{q}", "{q} in a small team", "In practice, {q}", "{q} and why", "{q}?"]


@dataclass
class Sample:
    """One request: HTTP latency from its scheduled start, status, and the server's own search time."""

    seconds: float
    status: int  # 0: no answer (connection error or timeout)
    took_ms: float | None


@dataclass
class PhaseResult:
    name: str
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float | None = None  # CPU the server process used in the phase (when started here)
    loadavg: float | None = None  # 1-minute load average at the end: other work on the machine shows here

    def summary(self) -> dict:
        ok = [s for s in self.samples if s.status == 200]
        lat = sorted(s.seconds * 1000 for s in ok)
        took = sorted(s.took_ms for s in ok if s.took_ms is not None)
        out = {
            "requests": len(self.samples),
            "errors": len(self.samples) - len(ok),
            "requests_per_s": round(len(ok) / self.wall_s, 1) if self.wall_s else 0.0,
            "http_p50_ms": _pct(lat, 50), "http_p99_ms": _pct(lat, 99), "http_max_ms": round(lat[-1], 1) if lat else None,
            "search_p50_ms": _pct(took, 50), "search_p99_ms": _pct(took, 99),
        }
        if out["http_p50_ms"] and out["search_p50_ms"]:
            out["http_over_search_p50"] = round(out["http_p50_ms"] / out["search_p50_ms"], 2)
        if self.server_cpu_s is not None and self.samples:
            out["server_cpu_ms_per_request"] = round(self.server_cpu_s * 1000 / len(self.samples), 1)
        out["loadavg_1m"] = self.loadavg
        return out


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def measured(phase, pid: int | None) -> PhaseResult:
    """Run a phase, noting the server's CPU time over it and the machine's load average after it."""
    before = cpu_seconds(pid)
    result = await phase
    after = cpu_seconds(pid)
    if before is not None and after is not None:
        result.server_cpu_s = after - before
    result.loadavg = round(os.getloadavg()[0], 2)
    return result


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))  # nearest rank
    return round(sorted_values[i], 1)


def load_queries() -> list[str]:
    """Varied questions: the project's question set, each in a few phrasings."""
    base = FALLBACK_QUERIES
    if QUESTIONS.exists():
        base = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [v.format(q=q.rstrip("?")) for q in base for v in VARIATIONS]


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        sys.exit(f"refusing {url}: this benchmark only drives a server on a loopback address")


async def _one(client: httpx.AsyncClient, query: str, k: int, start: float) -> Sample:
    try:
        r = await client.get("/search", params={"q": query, "k": k})
        took = r.json().get("took_ms") if r.status_code == 200 else None
        return Sample(time.perf_counter() - start, r.status_code, took)
    except (httpx.HTTPError, ValueError):
        return Sample(time.perf_counter() - start, 0, None)


async def fixed_rate(client: httpx.AsyncClient, queries: list[str], rate: float, duration: float, k: int) -> PhaseResult:
    """Open loop: request i leaves at t0 + i/rate; latency counts from that scheduled time."""
    n = min(int(rate * duration), MAX_REQUESTS)
    rng = random.Random(1)
    t0 = time.perf_counter() + 0.1
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(client, rng.choice(queries), k, due)))
    samples = await asyncio.gather(*tasks)
    return PhaseResult(f"fixed rate {rate:g}/s for {duration:g}s", list(samples), time.perf_counter() - t0)


async def saturate(client: httpx.AsyncClient, queries: list[str], clients: int, duration: float, k: int) -> PhaseResult:
    """Closed loop: `clients` workers, each sending its next request as soon as the last one answers."""
    rng = random.Random(2)
    samples: list[Sample] = []
    t0 = time.perf_counter()
    stop = t0 + duration

    async def worker() -> None:
        while time.perf_counter() < stop and len(samples) < MAX_REQUESTS:
            samples.append(await _one(client, rng.choice(queries), k, time.perf_counter()))

    await asyncio.gather(*(worker() for _ in range(clients)))
    return PhaseResult(f"{clients} clients back to back for {duration:g}s", samples, time.perf_counter() - t0)


async def run(url: str, rate: float, duration: float, clients: int, sat_duration: float, k: int, warmup: int,
              pid: int | None = None) -> dict:
    queries = load_queries()
    load_before = round(os.getloadavg()[0], 2)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=limits, trust_env=False) as client:
        ready = await client.get("/readyz")
        if ready.status_code != 200:
            sys.exit(f"server at {url} is not ready: {ready.status_code} {ready.text}")
        for q in queries[:warmup]:  # first requests pay for lazy initialisation; not what we measure
            await client.get("/search", params={"q": q, "k": k})
        phases = [await measured(fixed_rate(client, queries, rate, duration, k), pid)]
        if clients > 0 and sat_duration > 0:
            phases.append(await measured(saturate(client, queries, clients, sat_duration, k), pid))
    return {
        "url": url, "queries": len(queries), "k": k, "cpus": os.cpu_count(), "loadavg_1m_before": load_before,
        "index_version": ready.json().get("index_version"),
        "phases": {p.name: p.summary() for p in phases},
    }


def start_server(index: str | None, extra: tuple[str, ...] = (), ready_s: float = 120,
                 env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`rolesearch serve` (plus extra arguments and environment) on a free loopback port; the process and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "rolesearch", "serve", "--host", "127.0.0.1", "--port", str(port), *extra]
    if index:
        cmd += ["--index", index]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}; is there an index? (`rolesearch ingest`)")
        try:
            if httpx.get(url + "/readyz", timeout=1, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    sys.exit(f"the server did not become ready within {ready_s:.0f} s")


def add_load_arguments(ap: argparse.ArgumentParser, rate: float, duration: float, saturate: float) -> None:
    """The flags of the two phases (and --json), with these defaults."""
    ap.add_argument("--rate", type=float, default=rate, help="requests/s in the fixed-rate phase")
    ap.add_argument("--duration", type=float, default=duration, help="seconds of the fixed-rate phase (max 120)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients in the throughput phase (0: skip)")
    ap.add_argument("--saturate", type=float, default=saturate, help="seconds of the throughput phase (max 120)")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")


def bare_encode_p50(queries: list[str], repeats: int = 200) -> tuple[str, float]:
    """The server's encoder (same settings: backend, threads), loaded here: p50 ms of one query's encoding alone."""
    from dataclasses import replace

    from rolesearch.settings import Settings

    settings = Settings()
    embedder = replace(settings.embedder_spec(), threads=settings.torch_threads).load()
    if settings.torch_threads and embedder.backend == "torch":
        import torch

        torch.set_num_threads(settings.torch_threads)
    for q in queries[:10]:
        embedder.encode_query(q)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        embedder.encode_query(queries[i % len(queries)])
        times.append((time.perf_counter() - t) * 1000)
    return embedder.backend, round(float(statistics.median(times)), 2)


def zipf_log(questions: list[str], n: int, s: float = 1.1, seed: int = 3) -> list[str]:
    """A query log that repeats like a real one: n draws, the question of rank r with probability ~ 1 / r**s."""
    rng = random.Random(seed)
    order = questions[:]
    rng.shuffle(order)  # which question is most frequent is arbitrary, not the file's order
    weights = [1.0 / (r ** s) for r in range(1, len(order) + 1)]
    return rng.choices(order, weights=weights, k=n)


async def replay(client: httpx.AsyncClient, log: list[str], clients: int, k: int) -> PhaseResult:
    """Closed loop over a fixed log: `clients` workers take the next query of the log as soon as they are free."""
    samples: list[Sample] = []
    it = iter(log)
    t0 = time.perf_counter()

    async def worker() -> None:
        for q in it:
            samples.append(await _one(client, q, k, time.perf_counter()))

    await asyncio.gather(*(worker() for _ in range(clients)))
    return PhaseResult(f"zipf log of {len(log)}", samples, time.perf_counter() - t0)


def query_cache_compare(index: str | None, requests: int, clients: int, k: int, s: float = 1.1) -> dict:
    """The same Zipf(s) log over the question set's questions against a server with the query-vector cache
    off (ROLESEARCH_QUERY_CACHE_ENTRIES=0) and one with it on, one after the other in the same run."""
    base = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    log = zipf_log(base, min(requests, MAX_REQUESTS), s)
    out = {"requests": len(log), "distinct": len(set(log)), "zipf_s": s, "clients": clients}
    for name, entries in (("cache off", "0"), ("cache on", str(10_000))):
        proc, url = start_server(index, env_extra={"ROLESEARCH_QUERY_CACHE_ENTRIES": entries})
        try:
            async def go(url=url, pid=proc.pid):
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=limits, trust_env=False) as c:
                    for q in base[:20]:  # lazy initialisation; with the cache on, these 20 are cached too
                        await c.get("/search", params={"q": q + " (warm-up)", "k": k})
                    return await measured(replay(c, log, clients, k), pid)

            out[name] = asyncio.run(go()).summary()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    off, on = out["cache off"], out["cache on"]
    if off["requests_per_s"] and on["http_p99_ms"]:
        out["throughput_on_over_off"] = round(on["requests_per_s"] / off["requests_per_s"], 2)
        out["p99_off_over_on"] = round(off["http_p99_ms"] / on["http_p99_ms"], 2)
    return out


def print_cache_compare(r: dict) -> None:
    print(f"\nquery-vector cache: {r['requests']} requests, Zipf s={r['zipf_s']} over the question set "
          f"({r['distinct']} distinct), {r['clients']} clients back to back, same run")
    for name in ("cache off", "cache on"):
        x = r[name]
        print(f"  {name:9s}  {x['requests_per_s']} requests/s  HTTP p50 {x['http_p50_ms']} ms  p99 {x['http_p99_ms']} ms"
              f"  errors {x['errors']}  server CPU/request {x.get('server_cpu_ms_per_request')} ms")
    print(f"  on/off throughput {r.get('throughput_on_over_off')}x  off/on p99 {r.get('p99_off_over_on')}x")


async def _rate_phase(url: str, queries: list[str], rate: float, duration: float, k: int, warmup: int) -> PhaseResult:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=limits, trust_env=False) as client:
        for q in queries[:warmup]:
            await client.get("/search", params={"q": q, "k": k})
        return await fixed_rate(client, queries, rate, duration, k)


def analytics_cost(index: str | None, rate: float, duration: float, k: int, rounds: int = 8) -> dict:
    """The fixed-rate phase against two servers started here, analytics on (into a temporary file) and off,
    in alternating rounds of duration / rounds seconds each, so drift on the machine falls on both alike."""
    import sqlite3

    tmp = Path(tempfile.mkdtemp(prefix="rolesearch-load-"))
    db = tmp / "analytics.sqlite3"
    on_env = {"ROLESEARCH_ANALYTICS": "on", "ROLESEARCH_ANALYTICS_FILE": str(db)}
    servers = {"on": start_server(index, env_extra=on_env),
               "off": start_server(index, env_extra={"ROLESEARCH_ANALYTICS": "off"})}
    arms = {arm: PhaseResult(f"analytics {arm}") for arm in servers}
    queries = load_queries()
    try:
        for r in range(rounds):
            for arm in (("on", "off") if r % 2 == 0 else ("off", "on")):
                res = asyncio.run(_rate_phase(servers[arm][1], queries, rate, duration / rounds, k, 5 if r else 20))
                arms[arm].samples += res.samples
                arms[arm].wall_s += res.wall_s
        dropped = sum(float(line.rsplit(" ", 1)[1]) for line in
                      httpx.get(servers["on"][1] + "/metrics", trust_env=False).text.splitlines()
                      if line.startswith("rolesearch_analytics_events_dropped_total"))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0]
    shutil.rmtree(tmp, ignore_errors=True)
    out = {arm: a.summary() for arm, a in arms.items()}
    out["searches_recorded"], out["events_dropped"] = rows, int(dropped)
    out["p99_on_minus_off_ms"] = round(out["on"]["http_p99_ms"] - out["off"]["http_p99_ms"], 1)
    out["p50_on_minus_off_ms"] = round(out["on"]["http_p50_ms"] - out["off"]["http_p50_ms"], 1)
    out["in_process"] = recording_cost_in_process(k=k)
    return out


def recording_cost_in_process(n: int = 5000, k: int = 5) -> dict:
    """What recording adds to one request, without HTTP or other load's noise: p50/p99 microseconds of
    `recording.stamped` on a /search response of k hits, and the writer thread's time per event (its batches)."""
    import tempfile as _tempfile

    from rolesearch.analytics.recorder import Recorder
    from rolesearch.api.auth import ANONYMOUS
    from rolesearch.api.models import HitOut, SearchRequest, SearchResponse
    from rolesearch.api.recording import Recording, stamped

    with _tempfile.TemporaryDirectory(prefix="rolesearch-rec-") as tmp:
        recorder = Recorder(Path(tmp) / "analytics.sqlite3", 90, queue_max=n + 10)
        recording = Recording(recorder, b"k" * 32, True, 0.3)
        req = SearchRequest(q="who owns model rollback if a new release starts misbehaving?", k=k)
        hits = [HitOut(rank=i, score=0.5, passage_id=f"article-{i}:{i}", article_id=f"article-{i}", title="t",
                       section="s", section_path=["s"], text="x" * 600, url="/articles/a", start=0, end=600,
                       scores={"dense": 0.5, "lexical": 3.0, "fused": 0.5}) for i in range(1, k + 1)]
        resp = SearchResponse(query=req.q, mode="hybrid", hits=hits, index_version="v", took_ms=10.0)
        times = []
        for _ in range(n):  # the writer is not started yet: the request path alone
            t = time.perf_counter()
            stamped(recording, "search", req, resp, ANONYMOUS, "127.0.0.1")
            times.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        recorder.start()
        recorder.flush(60)
        write_s = time.perf_counter() - t
        recorder.close()
    times.sort()
    return {"stamp_p50_us": _pct(times, 50), "stamp_p99_us": _pct(times, 99),
            "writer_us_per_event": round(write_s * 1e6 / n, 1)}


def print_analytics_cost(cost: dict, rate: float) -> None:
    print(f"\nanalytics on vs off (two servers, same run, alternating rounds at {rate:g} requests/s):")
    for arm in ("on", "off"):
        s = cost[arm]
        print(f"  analytics {arm:3s}  requests {s['requests']}  errors {s['errors']}  HTTP p50 {s['http_p50_ms']} ms  "
              f"p99 {s['http_p99_ms']} ms  search p50 {s['search_p50_ms']} ms")
    print(f"  on - off: p50 {cost['p50_on_minus_off_ms']:+} ms, p99 {cost['p99_on_minus_off_ms']:+} ms; "
          f"{cost['searches_recorded']} searches recorded, {cost['events_dropped']} events dropped")
    ip = cost["in_process"]
    print(f"  in process, no HTTP: recording a search on the request path p50 {ip['stamp_p50_us']} us, "
          f"p99 {ip['stamp_p99_us']} us; the writer thread {ip['writer_us_per_event']} us per event, off the path")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="a running server (loopback only)")
    ap.add_argument("--start", action="store_true", help="start `rolesearch serve` on a free port for the run")
    ap.add_argument("--index", help="index folder for --start (default: the project's index/)")
    add_load_arguments(ap, rate=40.0, duration=20.0, saturate=15.0)
    ap.add_argument("--query-cache", type=int, default=0, metavar="N",
                    help="only compare the query-vector cache off and on: N requests of a Zipf log (servers started here)")
    ap.add_argument("--analytics-cost", action=argparse.BooleanOptionalAction, default=None,
                    help="also the fixed-rate phase with analytics on and off, two servers started here "
                         "(default: on with --start)")
    a = ap.parse_args()
    if a.query_cache:
        report = query_cache_compare(a.index, a.query_cache, a.clients, a.k)
        if a.json:
            print(json.dumps(report, indent=2))
        else:
            print_cache_compare(report)
        return
    duration, sat = min(a.duration, 120.0), min(a.saturate, 120.0)
    proc = None
    url = a.url
    if a.start:
        # Analytics on, as by default, but the bench's searches go to a throwaway file, not the index's own.
        scratch = tempfile.mkdtemp(prefix="rolesearch-load-")
        proc, url = start_server(a.index, env_extra={"ROLESEARCH_ANALYTICS_FILE": f"{scratch}/analytics.sqlite3"})
    check_loopback(url)
    try:
        report = asyncio.run(run(url, a.rate, duration, a.clients, sat, a.k, a.warmup, proc.pid if proc else None))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
            shutil.rmtree(scratch, ignore_errors=True)
    cost = None
    if a.analytics_cost if a.analytics_cost is not None else a.start:
        cost = analytics_cost(a.index, a.rate, duration, a.k)
        report["analytics_cost"] = cost
    # Measured after the server stopped, so it has the cores to itself, as the server's encoder had under load.
    backend, encode_p50 = bare_encode_p50(load_queries())
    report["bare_query_encode"] = {"backend": backend, "p50_ms": encode_p50}
    for s in report["phases"].values():
        s["http_p50_over_encode_p50"] = round(s["http_p50_ms"] / encode_p50, 2) if s.get("http_p50_ms") else None
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{url}  index {report['index_version']}  {report['queries']} distinct queries  k={a.k}  "
          f"{report['cpus']} CPUs  load average before {report['loadavg_1m_before']}")
    print(f"bare query encode ({backend}, alone, same settings) p50 {encode_p50} ms")
    for name, s in report["phases"].items():
        print(f"\n{name}:")
        print(f"  requests {s['requests']}  errors {s['errors']}  sustained {s['requests_per_s']} requests/s")
        print(f"  HTTP latency    p50 {s['http_p50_ms']} ms  p99 {s['http_p99_ms']} ms  max {s['http_max_ms']} ms")
        print(f"  search in-process (server's took_ms)  p50 {s['search_p50_ms']} ms  p99 {s['search_p99_ms']} ms"
              f"  -> HTTP/in-process p50 ratio {s.get('http_over_search_p50')}"
              f"  HTTP p50 / bare encode p50 {s.get('http_p50_over_encode_p50')}")
        cpu = s.get("server_cpu_ms_per_request")
        print(f"  server CPU per request {cpu if cpu is not None else 'n/a (use --start)'} ms"
              f"  load average after {s['loadavg_1m']}")
    if cost is not None:
        print_analytics_cost(cost, a.rate)


if __name__ == "__main__":
    main()
