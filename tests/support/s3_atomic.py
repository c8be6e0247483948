"""A loopback S3 API whose conditional writes are atomic, as AWS S3's are, and a bucket whose
server ignores them, as some S3-compatible servers do.

moto checks ``If-None-Match: *`` and then stores the object in two steps without a lock, so
two racing creates can both pass its check; AWS S3, MinIO and Ceph RGW decide atomically.
This server runs moto one request at a time, which makes moto's check atomic and leaves the
race between clients (list, check, write) exactly as real. In the bucket ``IGNORING`` the
server drops the ``If-None-Match`` header before moto sees it: a server without conditional
writes, on which a client must fall back to its lease lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.support.s3 import create_bucket

ATOMIC = "atomic"
IGNORING = "ignoring"


@contextlib.contextmanager
def serialized_moto_server() -> Iterator[str]:
    """Start the server on a free loopback port with both buckets; yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith(f"/{IGNORING}/"):
            environ.pop("HTTP_IF_NONE_MATCH", None)
        with one_at_a_time:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, serialized, threaded=True,
                         request_handler=MotoRequestHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        create_bucket(endpoint, ATOMIC)
        create_bucket(endpoint, IGNORING)
        yield endpoint
    finally:
        server.shutdown()
        thread.join()
