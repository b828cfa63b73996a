"""Serving on Ray Serve: the app of `create_app` as an ingress deployment, N replicas over one published index.

Each replica is a whole app (model, index, hot-reload watcher), so it follows index/CURRENT by itself; Ray
Serve's proxy spreads requests over the replicas and the controller replaces a replica that dies.
"""

from __future__ import annotations

import os
import signal
import socket
import threading

from fastapi import FastAPI
from prometheus_client import Info
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolesearch.api.app import create_app
from rolesearch.cluster import ClusterError, require_ray
from rolesearch.settings import Settings

APP_NAME = "rolesearch"
REPLICA_HEADER = "x-rolesearch-replica"  # on every response: the replica that answered


class ReplicaHeader:
    """ASGI middleware: names the replica on every HTTP response."""

    def __init__(self, app: ASGIApp, replica: str):
        self.app = app
        self.header = (REPLICA_HEADER.encode(), replica.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_named)


def replica_app(settings: Settings) -> FastAPI:
    """The app one replica serves (built on the replica): create_app's, naming the replica in a header and /metrics."""
    from ray import serve

    replica = serve.get_replica_context().replica_id.unique_id
    app = create_app(settings)
    Info("rolesearch_replica", "The Ray Serve replica that answered this scrape",
         registry=app.state.metrics.registry).info({"replica": replica, "pid": str(os.getpid()),
                                                    "host": socket.gethostname()})
    app.add_middleware(ReplicaHeader, replica=replica)
    return app


def run_replicas(settings: Settings, replicas: int, replica_cpus: float = 1.0) -> str:
    """Deploy the app with `replicas` replicas on the connected cluster, proxy on settings.host:port; its URL."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    require_ray()
    from ray import serve
    from ray.serve.config import HTTPOptions

    def build() -> FastAPI:  # a plain function: Serve takes it for a builder (a partial would pass for an ASGI app)
        return replica_app(settings)

    ingress = serve.ingress(build)
    deployment = serve.deployment(ingress(), name=APP_NAME, num_replicas=replicas,
                                  ray_actor_options={"num_cpus": replica_cpus},
                                  health_check_period_s=2, health_check_timeout_s=10)
    try:
        serve.start(http_options=HTTPOptions(host=settings.host, port=settings.port))
        serve.run(deployment.bind(), name=APP_NAME, route_prefix="/")
    except Exception as exc:  # noqa: BLE001 - deployment failures come as RuntimeError, RayServeException, ...
        raise ClusterError(f"Ray Serve could not start the replicas: {exc}") from exc
    return f"http://{settings.host}:{settings.port}"


def stop_replicas() -> None:
    """Remove the deployment and Serve's proxy and controller from the cluster."""
    from ray import serve

    serve.shutdown()


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
