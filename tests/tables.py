"""Small event tables written as Parquet or CSV partitions to any fsspec URL."""

from __future__ import annotations

import io

import fsspec
import numpy as np
import pandas as pd


def event_frame(rows: int = 200, *, seed: int = 0) -> pd.DataFrame:
    """Transactions whose label is learnable from two of four features."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(4)})
    frame["label"] = (frame["f0"] + frame["f1"] > 0).astype(int)
    return frame


def write_frame(url: str, frame: pd.DataFrame) -> str:
    """Write ``frame`` to ``url`` as Parquet or CSV, by suffix."""
    buffer = io.BytesIO()
    if url.endswith(".csv"):
        buffer.write(frame.to_csv(index=False).encode())
    else:
        frame.to_parquet(buffer, index=False)
    with fsspec.open(url, "wb") as f:
        f.write(buffer.getvalue())
    return url


def write_partitions(prefix: str, days: list[str], *, rows: int = 200) -> list[str]:
    """One Parquet partition per day: ``<prefix>/date=<day>/part-0.parquet``."""
    return [write_frame(f"{prefix}/date={day}/part-0.parquet", event_frame(rows, seed=i)) for i, day in enumerate(days)]
