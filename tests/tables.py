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


COUNTRIES = ["de", "fr", "gb", "us", "es", "it", "nl", "ng", "br"]
MERCHANT_CATEGORIES = ["grocery", "fuel", "restaurants", "travel", "electronics", "gambling", "fashion", "pharmacy"]
CHANNELS = ["pos", "web", "mobile"]


def transactions_frame(rows: int = 5000, *, seed: int = 0, fraud_rate: float = 0.015) -> pd.DataFrame:
    """Card transactions as a fraud team has them: numbers, text categories, missing values, 1-2 % fraud.

    Fraud is likelier for large amounts at night, in some countries and merchant categories,
    and on the web; a missing country is itself a signal. ``customer_age`` and ``country``
    are missing for some rows, ``merchant_category`` for a few. Labels are drawn from that
    risk, the intercept set so that about ``fraud_rate`` of the rows are fraud.
    """
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.5, 1.0, rows), 2)
    hour = rng.integers(0, 24, rows).astype(float)
    country = rng.choice(COUNTRIES, rows, p=[0.25, 0.2, 0.15, 0.15, 0.08, 0.07, 0.05, 0.03, 0.02]).astype(object)
    category = rng.choice(MERCHANT_CATEGORIES, rows).astype(object)
    channel = rng.choice(CHANNELS, rows, p=[0.5, 0.3, 0.2]).astype(object)
    age = rng.integers(18, 90, rows).astype(float)
    risk = (
        1.2 * (np.log(amount) - 3.5)
        + 1.5 * ((hour < 5) | (hour > 22))
        + 2.0 * np.isin(country, ["ng", "br"])
        + 1.8 * np.isin(category, ["gambling", "electronics"])
        + 1.0 * (channel == "web")
    )
    country_missing = rng.random(rows) < 0.04
    risk = risk + 1.5 * country_missing
    country[country_missing] = None
    age[rng.random(rows) < 0.05] = np.nan
    category[rng.random(rows) < 0.01] = None
    # The intercept that gives about fraud_rate positives, found by bisection on the expected rate.
    low, high = -30.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if (1 / (1 + np.exp(-(risk + middle)))).mean() > fraud_rate:
            high = middle
        else:
            low = middle
    label = (rng.random(rows) < 1 / (1 + np.exp(-(risk + low)))).astype(int)
    return pd.DataFrame(
        {
            "amount": amount,
            "hour": hour,
            "country": country,
            "merchant_category": category,
            "channel": channel,
            "customer_age": age,
            "label": label,
        }
    )


IMAGE_CLASSES = {"cat": (200, 60, 40), "dog": (40, 70, 200), "eel": (50, 180, 60)}


def write_image_folders(url: str, *, per_class: int = 24, seed: int = 0) -> dict[str, list[str]]:
    """PNGs (and a few JPEGs) in one folder per class under ``url``: each class has its own colour, sizes vary.

    Returns the written keys by class.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    written: dict[str, list[str]] = {}
    for name, colour in IMAGE_CLASSES.items():
        for i in range(per_class):
            height, width = int(rng.integers(24, 48)), int(rng.integers(24, 48))
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (height, width, 3)), 0, 255).astype("uint8")
            suffix, kind = (".jpg", "JPEG") if i % 5 == 4 else (".png", "PNG")
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format=kind)
            key = f"{url}/{name}/{i:04d}{suffix}"
            with fsspec.open(key, "wb") as f:
                f.write(buffer.getvalue())
            written.setdefault(name, []).append(key)
    return written


# A support team's tickets: the queue a ticket goes to shows in the words of its description.
TICKET_WORDS = {
    "billing": ["refund", "invoice", "charged", "twice", "payment", "card", "bill", "subscription"],
    "shipping": ["delivery", "package", "tracking", "courier", "late", "parcel", "address", "arrived"],
    "technical": ["error", "crash", "login", "password", "app", "screen", "update", "freezes"],
}
TICKET_FILLER = ["please", "help", "my", "the", "is", "not", "since", "yesterday", "order", "hi", "thanks", "again"]


def tickets_frame(rows: int = 300, *, seed: int = 0, words: int = 8) -> pd.DataFrame:
    """Support tickets: a free-text ``description`` (punctuation, capitals, some missing), a ``product``
    category, the customer's ``account_days`` and the ``queue`` label; ``words``: about how many words a
    description has."""
    rng = np.random.default_rng(seed)
    queues = list(TICKET_WORDS)
    label = rng.choice(queues, rows)
    descriptions = []
    for queue in label:
        count = max(2, int(rng.poisson(words)))
        signal = rng.choice(TICKET_WORDS[queue], max(1, count // 3))
        noise = rng.choice(TICKET_FILLER, count - len(signal))
        text = " ".join(rng.permutation([*signal, *noise]))
        ending = rng.choice(["!", ", ok?", ", ASAP."])
        descriptions.append(f"{text.capitalize()}{ending}")
    frame = pd.DataFrame(
        {
            "description": descriptions,
            "product": rng.choice(["app", "web", "store"], rows),
            "account_days": rng.choice(np.arange(1.0, 100_001), rows, replace=False),  # no two tickets alike
            "queue": label,
        }
    )
    frame.loc[rng.random(rows) < 0.05, "description"] = None
    return frame
