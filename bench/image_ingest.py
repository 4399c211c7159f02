"""Image ingest's memory: a folder stored in parts of images against the same folder stored whole, side by side.

Writes a folder of noise PNGs (they do not compress, so the folder is as large as asked),
then stores it twice under fresh roots, each in a fresh process:

- in parts (tasks/ingest/image_parts.py), as `kerasflow ingest` stores any folder larger
  than ``PART_BYTES``;
- whole, in one TFDS dataset (what ingest did before parts).

    .venv/bin/python bench/image_ingest.py [--images 3000] [--side 180]

Prints the folder's size, and for each way the wall time and the peak RSS above the
process's RSS once its imports are done (both from inside the child), with their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("cat", "dog", "eel", "owl")


def write_folder(folder: Path, *, images: int, side: int) -> int:
    """``images`` noise PNGs of ``side``x``side`` spread over four class folders; returns their bytes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    total = 0
    for i in range(images):
        path = folder / CLASSES[i % len(CLASSES)] / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype="uint8")).save(path)
        total += path.stat().st_size
    return total


def child(way: str, folder: str, root: str) -> None:
    """Store ``folder`` under ``root`` one way; print seconds and peak RSS above the imports as JSON."""
    import logging

    import tensorflow  # noqa: F401 - imported by the store; counted in the baseline, not the store
    import tensorflow_datasets  # noqa: F401

    from kerasflow.tasks.config import DataConfig
    from kerasflow.tasks.config.runtime import IngestRunConfig
    from kerasflow.tasks.data import materialize as materialization
    from kerasflow.tasks.ingest import image_parts
    from kerasflow.tasks.ingest.sources import identify, load_source
    from kerasflow.tasks.ingest.storing import find_or_store

    data = DataConfig(source="images", url=folder, image_size=(32, 32))
    identity = identify(data)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if way == "parts":
        assert image_parts.applies(data, identity), "the folder fits one part: ask for more images"
        ref = find_or_store(data, identity, root, logger=logging.getLogger("bench"), runtime=IngestRunConfig())
    else:
        ref = materialization.materialize(load_source(data, identity), root)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "mb": (peak - baseline) / 1024, "parts": len(ref.parts), "rows": ref.splits}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--side", type=int, default=180, help="width and height of each image")
    parser.add_argument("--child", nargs=3, metavar=("WAY", "FOLDER", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-images-") as tmp:
        folder = Path(tmp) / "photos"
        size = write_folder(folder, images=args.images, side=args.side)
        print(f"{args.images} PNGs of {args.side}x{args.side}: {size / 1e6:.0f} MB")
        results = {}
        for way in ("whole", "parts"):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
            out = subprocess.run(
                [sys.executable, __file__, "--child", way, str(folder), str(Path(tmp) / f"root-{way}")],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode:
                sys.exit(f"{way} failed:\n{out.stderr[-3000:]}")
            results[way] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[way]
            print(f"{way:>5}: {r['seconds']:6.1f} s, peak RSS above imports {r['mb']:6.0f} MB, parts {r['parts']}")
        whole, parts = results["whole"], results["parts"]
        assert whole["rows"] == parts["rows"], (whole["rows"], parts["rows"])
        time_ratio, memory_ratio = parts["seconds"] / whole["seconds"], parts["mb"] / max(whole["mb"], 1)
        print(f"parts/whole: time {time_ratio:.2f}, memory {memory_ratio:.2f}")


if __name__ == "__main__":
    main()
