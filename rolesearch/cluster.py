"""A Ray cluster for the duration of a command: connect to one by address, or start a local one and stop it after."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

INSTALL_HINT = "Ray is not installed: pip install -e '.[scale]'"
CONNECT_TIMEOUT_S = 10.0  # to reach the head's port; ray.init's own retries take minutes on a dead address
INIT_TIMEOUT_S = 20.0  # for ray.init after the port answered: a whole error stays under 30 s
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2  # a local cluster here moves vectors, not data sets


class ClusterError(RuntimeError):
    """Ray cannot be used: not installed, the address is unreachable, or the cluster failed the job."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where the cluster is: address as ray.init takes it (None: start a local one with num_cpus)."""

    address: str | None = None
    num_cpus: int | None = None
    object_store_bytes: int = LOCAL_OBJECT_STORE_BYTES


def require_ray():
    """The ray module, or a ClusterError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(INSTALL_HINT) from exc
    return ray


def head_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a 'host:port' or 'ray://host:port' address; None for 'auto' and other names ray resolves."""
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ClusterError(f"bad Ray address {address!r}: {exc}") from exc
    if not parts.hostname or port is None:
        raise ClusterError(f"bad Ray address {address!r}: expected host:port, ray://host:port or auto")
    return parts.hostname, port


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast (ClusterError) when nothing listens at the address's host and port."""
    endpoint = head_endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc}") from exc


def _init_within(ray, kwargs: dict, timeout: float) -> None:
    """ray.init, or a ClusterError after `timeout` s: on a port that is open but not Ray's it retries for minutes."""
    outcome: list[BaseException | None] = []

    def init() -> None:
        try:
            ray.init(**kwargs)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=init, name="ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    where = kwargs["address"] if kwargs["address"] != "local" else "a local cluster"
    if not outcome:
        raise ClusterError(f"no Ray cluster answered at {where} within {timeout:.0f} s (a cluster with token "
                           "authentication also needs RAY_AUTH_MODE=token and its token here)")
    if outcome[0] is not None:
        raise ClusterError(f"cannot start or reach Ray at {where}: {outcome[0]}") from outcome[0]


@contextlib.contextmanager
def ray_cluster(options: ClusterOptions) -> Iterator[object]:
    """Ray connected for the block: the given cluster, or a local one started here and stopped at the end."""
    ray = require_ray()
    if ray.is_initialized():  # a caller (a test session) already holds a connection: use it, leave it open
        yield ray
        return
    kwargs: dict = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if options.address is None:
        kwargs |= {"address": "local", "num_cpus": options.num_cpus, "object_store_memory": options.object_store_bytes}
    else:
        check_reachable(options.address)
        kwargs["address"] = options.address
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers inherit it: no tokenizer thread pools
    if options.address is None:
        try:  # starting a local cluster does not hang, and wants the main thread (it sets signal handlers)
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises RuntimeError, ConnectionError, ValueError, ...
            raise ClusterError(f"cannot start a local Ray cluster: {exc}") from exc
    else:
        _init_within(ray, kwargs, INIT_TIMEOUT_S)
    try:
        yield ray
    finally:
        ray.shutdown()
