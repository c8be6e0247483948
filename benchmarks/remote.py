"""Push and pull throughput against a plain s3fs copy of the same bytes, in one run.

    python benchmarks/remote.py [--size-mib 256] [--repeat 3]

Starts moto's S3 server on loopback (an in-process Python server, so every figure here is
bound by it, not by a network), then for a generated bf16 checkpoint:
  s3fs put     s3fs.put_file of the original file (one multipart upload)
  s3fs get     s3fs.get_file of it back
  push         modelmanager push of the imported version to an empty prefix (every chunk)
  pull         modelmanager pull of it into an empty repository (verify every chunk)
  push again   the same push once more: nothing to send (one listing, one manifest check)
Throughput is the checkpoint's size over the time (push and pull move compressed chunks).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import s3fs
from moto.server import ThreadedMotoServer

from benchmarks.synthetic import write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import RemoteSpec, open_remote, pull, push


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MODELMANAGER_CACHE"] = str(work / "cache")
        src = write_checkpoint(work / "m.safetensors", args.size_mib, "BF16",
                               rows=(1024, 2048, 4096), cols=1024)  # fmt: skip
        size = src.stat().st_size
        ws = init_repository(work / "repo")
        import_paths(ws, [src], "m")
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
        rows = []
        t, _ = median_seconds(lambda: fs.put_file(str(src), "bench/plain/m.safetensors"),
                              args.repeat)  # fmt: skip
        rows.append(("s3fs put", t))
        t, _ = median_seconds(lambda: fs.get_file("bench/plain/m.safetensors",
                                                  str(work / "got")), args.repeat)  # fmt: skip
        rows.append(("s3fs get", t))
        prefixes: list[str] = []

        def fresh_push() -> None:
            prefixes.append(uuid.uuid4().hex[:8])
            spec = RemoteSpec("b", f"s3://bench/{prefixes[-1]}", endpoint=endpoint)
            push(ws, "m", open_remote(spec))

        rows.append(("push", median_seconds(fresh_push, args.repeat)[0]))
        spec = RemoteSpec("b", f"s3://bench/{prefixes[-1]}", endpoint=endpoint)
        rows.append(("push again", median_seconds(lambda: push(ws, "m", open_remote(spec)),
                                                  args.repeat)[0]))  # fmt: skip
        pulls = iter(range(args.repeat))

        def fresh_pull() -> None:
            other = init_repository(work / f"pulled-{next(pulls)}")
            pull(other, open_remote(spec), "m")
            other.close()

        rows.append(("pull", median_seconds(fresh_pull, args.repeat)[0]))
        ws.close()
    server.stop()
    base = dict(rows)
    print(f"checkpoint: {size / 1e6:.0f} MB bf16, moto S3 on loopback, median of {args.repeat}")
    for label, seconds in rows:
        sending = label in ("s3fs put", "push", "push again")
        peer = base["s3fs put"] if sending else base["s3fs get"]
        print(f"  {label:12} {seconds:7.3f} s  {size / seconds / 1e6:7.0f} MB/s  "
              f"{peer / seconds:5.2f}x s3fs")  # fmt: skip


if __name__ == "__main__":
    main()
