"""Two builds at once: the second refuses (default) or waits (--wait); neither corrupts the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from rolesearch.ingest.pipeline import build_index
from rolesearch.store.manifest import IndexBusy, current_version
from rolesearch.store.publish import build_lock
from rolesearch.store.versions import load_version
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _ingest(corpus, index, *extra) -> subprocess.Popen:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "rolesearch", "ingest", "--corpus", str(corpus), "--index", str(index),
                             "--json", *extra], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _blocked_on_flock(pid: int) -> bool:
    # Linux lists a process waiting for a lock as "N: -> FLOCK ... <pid> ..." in /proc/locks.
    with open("/proc/locks") as f:
        return any("->" in line and line.split()[5] == str(pid) for line in f)


def test_second_build_refuses_while_one_runs(small_corpus, small_index):
    published = current_version(small_index)
    with build_lock(small_index):  # a build in progress
        proc = _ingest(small_corpus, small_index)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert f"error: another build is running on {small_index}" in err and out == ""
    assert current_version(small_index) == published
    load_version(small_index)


def test_second_build_waits_with_wait_flag(small_corpus, small_index):
    published = current_version(small_index)
    with build_lock(small_index):
        proc = _ingest(small_corpus, small_index, "--wait")
        deadline = time.monotonic() + 120
        while not _blocked_on_flock(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "never blocked"
            time.sleep(0.05)
        assert current_version(small_index) == published  # it waits; it does not build behind our back
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["version"] == current_version(small_index) != published
    assert summary["passages"]["embedded"] == 0 and summary["articles"]["unchanged"] == 2


def test_threads_in_one_process_also_exclude_each_other(small_corpus, small_index, embedder):
    with build_lock(small_index):
        with pytest.raises(IndexBusy, match="another build is running"):
            build_index(small_corpus, small_index, embedder)
    assert build_index(small_corpus, small_index, embedder).version == current_version(small_index)
