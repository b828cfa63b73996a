"""Ray: `ingest --ray` gives the local build's index, a killed worker publishes nothing half-written, and Ray
Serve replicas all answer, follow a new version and survive the loss of one. One local cluster per session."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import CORPUS, DRIFT_ARTICLE, ROOT, SMALL_ARTICLES, require_part

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
VECTOR_TOLERANCE = 2e-7  # docs/scaling.md: "Vectors match the local build's within 2e-7 here"


def _processes() -> dict[int, tuple[int, str, bytes]]:
    """pid -> (parent pid, state, command line) of every process (Linux /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            table[int(entry.name)] = (int(stat[1]), stat[0], (entry / "cmdline").read_bytes())
        except (OSError, IndexError, ValueError):
            continue
    return table


def _descendants(root: int, table: dict) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _ray_pids() -> set[int]:
    """Live (not zombie) processes of any Ray cluster on this machine."""
    return {pid for pid, (_, state, cmd) in _processes().items()
            if state != "Z" and (cmd.startswith(b"ray::") or b"/ray/" in cmd or b"raylet" in cmd or b"gcs_server" in cmd)}


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = pids & _ray_pids()
        if not left:
            return set()
        time.sleep(0.25)
    return pids & _ray_pids()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster for the session (4 logical CPUs, a 200 MB object store), stopped at the end with
    every process it started."""
    require_part("ray")
    from rolesearch.cluster import ClusterOptions, ray_cluster

    with ray_cluster(ClusterOptions(num_cpus=4)) as ray:
        yield ray
        started = _descendants(os.getpid(), _processes())
    left = _wait_gone(started, 30)
    for pid in left:  # never leave a process behind, then say so
        os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray processes still running after ray.shutdown(): {sorted(left)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manifest(index_dir: Path) -> dict:
    from rolesearch.store.manifest import read_manifest

    return asdict(read_manifest(index_dir))


# --- ingest ---------------------------------------------------------------------------------------------


def test_ingest_on_a_local_two_actor_cluster_gives_the_local_index(corpus_index, tmp_path):
    """`rolesearch ingest --ray --ray-actors 2` on the real corpus: same passages, vectors within 2e-7 (what
    docs/scaling.md says), same manifest apart from id and build time; its own cluster is stopped, no Ray
    process left."""
    from rolesearch.store.versions import load_version

    before = _ray_pids()
    out = subprocess.run([sys.executable, "-m", "rolesearch", "ingest", "--corpus", str(CORPUS), "--index",
                          str(tmp_path / "index"), "--json", "--ray", "--ray-actors", "2"],
                         env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    local, ray = load_version(corpus_index), load_version(tmp_path / "index")
    assert summary["version"] == ray.manifest.version
    assert summary["passages"]["embedded"] == summary["passages"]["total"] == len(local.passages)
    assert summary["sentences"]["embedded"] > 0
    assert [asdict(p) for p in ray.passages] == [asdict(p) for p in local.passages]
    assert np.abs(ray.embeddings - local.embeddings).max() <= VECTOR_TOLERANCE
    assert ray.sentence_embeddings.shape == local.sentence_embeddings.shape
    assert np.abs(ray.sentence_embeddings - local.sentence_embeddings).max() <= VECTOR_TOLERANCE
    a, b = _manifest(corpus_index), _manifest(tmp_path / "index")
    assert a["version"] != b["version"]
    for key in ("version", "built_at"):
        a.pop(key), b.pop(key)
    assert a == b
    assert not _wait_gone(_ray_pids() - before, 30), "the command left Ray processes running"


def _map_workers() -> list[int]:
    return sorted(pid for pid, (_, state, cmd) in _processes().items()
                  if state != "Z" and cmd.startswith(b"ray::MapWorker(MapBatches(EncodeActor"))


def test_a_killed_worker_is_restarted_and_the_build_completes_like_a_local_one(ray_local, corpus_index, embedder,
                                                                             tmp_path):
    """SIGKILL one embedding actor mid-build: Ray restarts it and retries its batch, so the build completes
    and publishes what a local build gives (docs/scaling.md); the previous version is served meanwhile, the
    new one after, and no version on disk is half written."""
    from fastapi.testclient import TestClient

    from rolesearch.api.app import create_app
    from rolesearch.encoder.ray_encoder import RayEncoder
    from rolesearch.ingest.pipeline import build_index
    from rolesearch.settings import Settings
    from rolesearch.store.manifest import current_version
    from rolesearch.store.versions import load_version

    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index, index_dir)
    previous = current_version(index_dir)
    killed: list[int] = []
    app = create_app(Settings(index_dir=index_dir, reload_interval=0.2), embedder=embedder)
    with TestClient(app) as client:
        def kill_one(done: int, total: int) -> None:
            if not killed:
                assert done < total, "the build finished before a worker could be killed"
                workers = _map_workers()
                assert workers, "no Ray embedding actor found to kill"
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
                assert current_version(index_dir) == previous
                assert client.get("/readyz").json()["index_version"] == previous

        # full: nothing from the copied cache or version, so every vector comes from the actors
        summary = build_index(CORPUS, index_dir, RayEncoder(embedder, 2), full=True, on_progress=kill_one)
        assert killed and killed[0] not in _map_workers()  # the killed actor is gone, a new one took its work
        assert summary.passages["embedded"] == summary.passages["total"] > 0
        assert current_version(index_dir) == summary.version != previous
        rebuilt, local = load_version(index_dir), load_version(index_dir, previous)
        assert [asdict(p) for p in rebuilt.passages] == [asdict(p) for p in local.passages]
        assert np.abs(rebuilt.embeddings - local.embeddings).max() <= VECTOR_TOLERANCE
        assert np.abs(rebuilt.sentence_embeddings - local.sentence_embeddings).max() <= VECTOR_TOLERANCE
        a, b = _manifest(corpus_index), _manifest(index_dir)
        for key in ("version", "built_at"):
            a.pop(key), b.pop(key)
        assert a == b
        # Every version folder that is not a temporary one is complete.
        for folder in (index_dir / "versions").iterdir():
            if not folder.name.startswith("."):
                load_version(index_dir, folder.name)
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["index_version"] != summary.version and time.monotonic() < deadline:
            time.sleep(0.1)
        r = client.get("/search", params={"q": "who owns model rollback?"})
        assert r.status_code == 200 and r.json()["index_version"] == summary.version


# --- serve ----------------------------------------------------------------------------------------------

REPLICA = "x-rolesearch-replica"


@pytest.fixture(scope="module")
def replicas(ray_local, embedder, tmp_path_factory):
    """Two Ray Serve replicas over a small published index (reload every 0.5 s); removed at the end."""
    from rolesearch.api.replicas import run_replicas, stop_replicas
    from rolesearch.ingest.pipeline import build_index
    from rolesearch.settings import Settings

    root = tmp_path_factory.mktemp("ray-serve")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = root / "index"
    build_index(corpus, index_dir, embedder)
    settings = Settings(index_dir=index_dir, corpus_dir=corpus, port=_free_port(), reload_interval=0.5,
                        access_log=False)
    url = run_replicas(settings, 2, replica_cpus=1)
    try:
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            yield client, corpus, index_dir
    finally:
        stop_replicas()


def _answers(client: httpx.Client, path: str, want: int, **params) -> dict[str, httpx.Response]:
    """The last response of each replica seen, after up to 60 requests or once `want` replicas answered."""
    seen: dict[str, httpx.Response] = {}
    for _ in range(60):
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        seen[r.headers[REPLICA]] = r
        if len(seen) >= want:
            break
    return seen


def test_both_replicas_answer_and_name_themselves(replicas):
    client, _, _ = replicas
    seen = _answers(client, "/search", 2, q="who rolls back a bad model release?", k=3)
    assert len(seen) == 2
    for r in seen.values():
        assert r.json()["hits"][0]["title"] == "Who does what in ML"
    metrics = _answers(client, "/metrics", 2)
    assert set(metrics) == set(seen)
    for replica, r in metrics.items():
        assert f'replica="{replica}"' in r.text  # /metrics says which replica answered the scrape


def test_both_replicas_serve_a_new_version_within_seconds(replicas, embedder):
    from rolesearch.ingest.pipeline import build_index

    client, corpus, index_dir = replicas
    (corpus / "drift.md").write_text(DRIFT_ARTICLE, encoding="utf-8")
    new = build_index(corpus, index_dir, embedder).version
    published = time.monotonic()
    latest: dict[str, str] = {}
    while time.monotonic() - published < 5:  # docs/scaling.md: about 1 s at a 0.5 s reload poll
        r = client.get("/readyz")
        latest[r.headers[REPLICA]] = r.json()["index_version"]
        if len(latest) == 2 and set(latest.values()) == {new}:
            break
        time.sleep(0.05)
    assert len(latest) == 2 and set(latest.values()) == {new}, latest
    print(f"both replicas on the new version {time.monotonic() - published:.1f} s after it was published")
    seen = _answers(client, "/search", 2, q="population stability index incident", k=1)
    assert {r.json()["hits"][0]["title"] for r in seen.values()} == {"Drift runbook"}


def test_requests_keep_succeeding_when_a_replica_is_killed_and_a_new_one_answers(replicas):
    """SIGKILL one replica: no request fails while the other answers alone, then the controller's replacement
    answers too (two distinct replica ids again, one of them new)."""
    client, _, _ = replicas
    scrapes = _answers(client, "/metrics", 2)
    assert len(scrapes) == 2
    victim, r = next(iter(scrapes.items()))
    pid = int(r.text.split(f'replica="{victim}"')[0].rsplit('pid="', 1)[1].split('"')[0])
    os.kill(pid, signal.SIGKILL)
    statuses, answered_by = [], set()
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 8:
        r = client.get("/search", params={"q": "who sets up drift monitoring?", "k": 3})
        statuses.append(r.status_code)
        answered_by.add(r.headers.get(REPLICA))
    assert statuses and set(statuses) == {200}, statuses
    assert answered_by and victim not in answered_by
    # The replacement: health checks every 2 s, then a new replica loads the model and the index.
    while time.monotonic() - killed_at < 120 and not (answered_by - set(scrapes)):
        r = client.get("/search", params={"q": "who sets up drift monitoring?", "k": 3})
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["title"] == "Who does what in ML"
        answered_by.add(r.headers[REPLICA])
        time.sleep(0.05)
    new = answered_by - set(scrapes)
    assert new, f"no replacement replica answered within 120 s of the kill (answered: {answered_by})"
    print(f"a replacement replica answered {time.monotonic() - killed_at:.1f} s after the kill")
    now = _answers(client, "/search", 2, q="who sets up drift monitoring?", k=3)
    assert len(now) == 2 and victim not in now and set(now) & new, now


# --- bad input ------------------------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 60, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}import sys; from rolesearch.cli.main import main; sys.argv = ['rolesearch', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=ENV, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_an_unreachable_address_fails_fast_and_publishes_nothing(tmp_path):
    from rolesearch.cluster import ClusterError, check_reachable

    require_part("ray")
    # docs/scaling.md: "An address where nothing listens fails within 10 s (a TCP probe before ray.init)". The
    # probe is timed in this process; the command below adds an interpreter's start-up and imports to it.
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at {address}"):
        check_reachable(address)
    assert time.monotonic() - t0 < 10
    t0 = time.monotonic()
    out = _cli("ingest", "--index", str(tmp_path / "index"), "--ray", f"127.0.0.1:{_free_port()}")
    assert out.returncode == 1
    assert time.monotonic() - t0 < 30  # start-up included
    assert "cannot reach the Ray cluster at 127.0.0.1:" in out.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


@pytest.mark.parametrize("command", ["ingest", "serve"])
def test_without_the_extra_ray_names_it(command, tmp_path):
    out = _cli(command, "--index", str(tmp_path / "index"), "--ray", prelude="import sys; sys.modules['ray'] = None; ")
    assert out.returncode == 1
    assert "pip install -e '.[scale]'" in out.stderr
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("count", ["0", "-1"])
def test_replicas_below_one_are_refused(count):
    out = _cli("serve", "--ray", "--replicas", count)
    assert out.returncode == 2
    assert f"--replicas must be at least 1, got {count}" in out.stderr


# --- proxy mode behind Ray Serve's proxy (issue 21) ----------------------------------------------------------


def test_proxy_mode_on_ray_believes_no_forwarded_address(ray_local, embedder, tmp_path):
    """Ray Serve's HTTP proxy runs uvicorn, which by default rewrites a loopback peer from X-Forwarded-For; in
    proxy mode a local client could then pose as the trusted proxy. `serve --ray` must not let it. Last in this
    file: it replaces the module's replicas with its own deployment (one Serve application name)."""
    from rolesearch.api.replicas import run_replicas, stop_replicas
    from rolesearch.ingest.pipeline import build_index
    from rolesearch.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "secret.md").write_text("---\ntitle: Falcon layoffs\naccess: [hr]\n---\n# Falcon layoffs\n\n"
                                      "The Falcon team is cut by half in March.\n", encoding="utf-8")
    build_index(corpus, tmp_path / "index", embedder)
    # The trusted proxy is 127.0.0.2 (the whole of 127/8 is loopback on Linux); the attacker connects from 127.0.0.1.
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus, port=_free_port(), reload_interval=0,
                        access_log=False, auth="proxy", trusted_proxies="127.0.0.2")
    stop_replicas()  # the module's deployment, if any: its tests have run
    url = run_replicas(settings, 1, replica_cpus=1)
    try:
        hr = {"X-Forwarded-User": "eve", "X-Forwarded-Groups": "hr"}
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as attacker:
            for forwarded in ("127.0.0.2", "127.0.0.2, 127.0.0.1"):
                r = attacker.get("/healthz", headers=hr | {"X-Forwarded-For": forwarded})
                assert r.status_code == 403, (forwarded, r.text)
                print(forwarded, "->", r.json()["detail"])
            r = attacker.get("/search", params={"q": "Falcon layoffs"}, headers=hr | {"X-Forwarded-For": "127.0.0.2"})
            assert r.status_code == 403 and "Falcon" not in r.text
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, timeout=30, trust_env=False, transport=transport) as proxy:
            r = proxy.get("/healthz", headers=hr)
            assert r.status_code == 200 and r.json()["articles"] == 3, r.text
            assert proxy.get("/healthz").json()["articles"] == 2  # anonymous through the proxy: public only
    finally:
        stop_replicas()
