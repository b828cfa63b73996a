"""Ray Serve's proxy against plain `rolesearch serve`, in one run: latency at a fixed rate and requests/s.

    .venv/bin/python bench/ray_serve_load.py                  # the index in index/, 2 replicas
    .venv/bin/python bench/ray_serve_load.py --replicas 1 --rate 10

Starts `rolesearch serve` on a free loopback port and measures it with bench/load.py's phases, stops it,
then does the same with `rolesearch serve --ray --replicas N` (a local Ray cluster that the command starts
and stops). The two never run at once. Printed: p50/p99 latency and requests/s of each, the ratio Ray / plain,
and the load average (the machine may be shared). Loopback only; every phase is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import ROOT, add_load_arguments, run, start_server  # noqa: E402 - bench/ is a folder of scripts, not a package


def hop_ms(url: str, n: int = 200) -> dict:
    """p50/p99 of GET /healthz one at a time: no search work, so what remains is the HTTP path (Ray: proxy + replica)."""
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            client.get("/healthz").raise_for_status()
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(times[n // 2], 2), "p99_ms": round(times[int(n * 0.99) - 1], 2)}


def measure(index: str, extra: tuple[str, ...], a: argparse.Namespace) -> dict:
    proc, url = start_server(index, extra, ready_s=300)
    try:
        report = asyncio.run(run(url, a.rate, a.duration, a.clients, a.saturate, a.k, a.warmup,
                                 None if extra else proc.pid))
        report["healthz"] = hop_ms(url)
        return report
    finally:
        proc.terminate()  # SIGTERM: the Ray command removes its deployment and stops its cluster
        proc.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "index"))
    ap.add_argument("--replicas", type=int, default=2)
    add_load_arguments(ap, rate=20.0, duration=15.0, saturate=10.0)
    a = ap.parse_args()
    a.duration, a.saturate = min(a.duration, 120.0), min(a.saturate, 120.0)
    if not (Path(a.index) / "CURRENT").exists():
        sys.exit(f"no published index in {a.index}: run `rolesearch ingest` first")
    report = {
        "plain": measure(a.index, (), a),
        f"ray serve, {a.replicas} replicas": measure(a.index, ("--ray", "--replicas", str(a.replicas)), a),
    }
    if a.json:
        print(json.dumps(report, indent=2))
        return
    plain, ray = report.values()
    print(f"index {plain['index_version']}, {plain['cpus']} CPUs, k={a.k}; load average before: plain "
          f"{plain['loadavg_1m_before']}, Ray {ray['loadavg_1m_before']}")
    for phase in plain["phases"]:
        p, r = plain["phases"][phase], ray["phases"][phase]
        print(f"\n{phase}:")
        print(f"  {'':26s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>7s} {'errors':>6s} {'load after':>10s}")
        for name, s in (("plain rolesearch serve", p), (f"Ray Serve ({a.replicas} replicas)", r)):
            print(f"  {name:26s} {s['http_p50_ms']:8.1f} {s['http_p99_ms']:8.1f} {s['requests_per_s']:7.1f} "
                  f"{s['errors']:6d} {s['loadavg_1m']:10.2f}")
        print(f"  Ray / plain: p50 x{r['http_p50_ms'] / p['http_p50_ms']:.2f}, p99 x{r['http_p99_ms'] / p['http_p99_ms']:.2f}, "
              f"requests/s x{r['requests_per_s'] / p['requests_per_s']:.2f}; "
              f"p50 overhead {r['http_p50_ms'] - p['http_p50_ms']:+.1f} ms")
    p, r = plain["healthz"], ray["healthz"]
    print(f"\nGET /healthz one at a time (the HTTP path alone): plain p50 {p['p50_ms']} ms p99 {p['p99_ms']} ms; "
          f"Ray p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms; overhead p50 {r['p50_ms'] - p['p50_ms']:+.2f} ms")


if __name__ == "__main__":
    main()
