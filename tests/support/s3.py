"""A real S3 API on loopback (moto's threaded server) for tests of S3 remotes and stores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

BUCKET = "models"
REGION = "us-east-1"
#: What the loopback server accepts (any keys do); tests put them in the AWS environment.
TEST_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server._server.server_address
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    """Make ``bucket`` on the server at ``endpoint`` (nothing when it exists)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
