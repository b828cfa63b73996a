"""Hot reload: a background task that follows index/CURRENT and swaps new versions into the service."""

from __future__ import annotations

import asyncio
import logging

from rolesearch.api.service import Service

log = logging.getLogger(__name__)


async def watch_index(service: Service, interval: float) -> None:
    """Poll the published version every `interval` seconds and swap it in; runs until cancelled.

    Polling one small file is cheap and works on any file system (inotify misses renames over NFS);
    the load itself runs in a worker thread so requests keep being answered meanwhile.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            if await asyncio.to_thread(service.reload):
                log.info("now serving index version %s", service.version)
            elif service.reload_error:
                log.debug("not swapping: %s", service.reload_error)
        except Exception:  # noqa: BLE001 - the watcher must outlive any one bad check
            log.exception("index reload check failed")
