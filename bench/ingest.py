"""Bulk S3 download against file-by-file, side by side in one run, on a real S3 server.

Starts moto's S3 protocol server on loopback, writes daily Parquet partitions to it,
then downloads the same files alternately

- **bulk**: the way ingest does it (``tasks/ingest/sources/tables/tabular.py``): one s3fs ``get`` of every
  file, which s3fs runs concurrently;
- **sequential**: one ``get_file`` after another,

and runs one whole materialization (list, fingerprint, bulk download, read, check,
write TFDS, publish) for scale.

    .venv/bin/python bench/ingest.py [--files 48] [--rows 60000] [--rounds 3] [--latency-ms 20]

Prints MB/s of each and the ratio bulk / sequential (best round of each, and medians),
twice: straight to the server on loopback (no network latency: the ratio's floor), and
through a TCP relay that holds every request for ``--latency-ms`` before passing it on,
as the time to first byte of a real S3 endpoint does (tens of milliseconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def start_s3() -> object:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return server


def start_delay_relay(target_port: int, latency: float) -> int:
    """A loopback TCP relay to ``target_port`` that delays each client->server chunk by ``latency`` s."""
    import asyncio
    import threading

    async def pipe(reader, writer, delay: float) -> None:
        try:
            while data := await reader.read(1 << 16):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_reader, server_writer, latency), pipe(server_reader, client_writer, 0))

    ready = threading.Event()
    port: list[int] = []

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    ready.wait(10)
    return port[0]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--rows", type=int, default=60_000, help="rows per file (4 float columns and a label)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    server = start_s3()
    try:
        import fsspec

        from kerasflow.tasks.config import DataConfig
        from kerasflow.tasks.data.materialize import materialize
        from kerasflow.tasks.ingest.sources import load_source
        from kerasflow.tasks.ingest.sources.tables import tabular
        from tests.tables import write_partitions

        fs = fsspec.filesystem("s3")
        fs.mkdir("bench")
        days = [f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(args.files)]
        write_partitions("s3://bench/events", days, rows=args.rows)
        url = "s3://bench/events/date=*/part-*.parquet"
        files = tabular.list_files(url)
        megabytes = sum(f.size for f in files) / 1e6
        print(f"{len(files)} files, {megabytes:.1f} MB on {os.environ['AWS_ENDPOINT_URL']}", flush=True)

        def bulk() -> None:
            with tempfile.TemporaryDirectory() as tmp:
                tabular.download_files(files, Path(tmp))  # the code path ingest uses

        def sequential() -> None:
            with tempfile.TemporaryDirectory() as tmp:
                for i, f in enumerate(files):
                    fs.get_file(f.path, os.path.join(tmp, f"{i:06d}.parquet"))

        with tempfile.TemporaryDirectory() as root:
            whole = timed(lambda: materialize(load_source(DataConfig(source="files", url=url)), root))
        print(f"whole materialization (list, download, read, check, write TFDS, publish): {whole:.1f} s")

        direct = os.environ["AWS_ENDPOINT_URL"]
        relay = f"http://127.0.0.1:{start_delay_relay(int(direct.rsplit(':', 1)[1]), args.latency_ms / 1000)}"
        for label, endpoint in (("loopback", direct), (f"+{args.latency_ms:g} ms per request", relay)):
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            fsspec.filesystem("s3").clear_instance_cache()
            fs = fsspec.filesystem("s3")
            seconds: dict[str, list[float]] = {"bulk": [], "sequential": []}
            for i in range(args.rounds):
                for key in ("bulk", "sequential") if i % 2 == 0 else ("sequential", "bulk"):
                    seconds[key].append(timed(bulk if key == "bulk" else sequential))
            print(f"{label}:")
            for key, values in seconds.items():
                print(f"  {key:<10} MB/s by round: {' '.join(f'{megabytes / s:.1f}' for s in values)}")
            best = min(seconds["sequential"]) / min(seconds["bulk"])
            median = statistics.median(seconds["sequential"]) / statistics.median(seconds["bulk"])
            print(f"  bulk / sequential throughput: {best:.2f} (best rounds), {median:.2f} (medians)", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
