"""A dataset made of stored datasets: the files of a table, the row ranges of one large file, or runs of images.

The combined dataset reads its parts in order (``DatasetRef.parts``); its class names and
slice values are the union of theirs, and each part keeps its own ids with a map to the
combined ones (``DatasetPart.class_ids``, ``slice_ids``). A dataset that is itself made of
parts (a large file, tasks/ingest/file_parts.py) contributes its parts, their maps composed
with its own, so readers always see one flat list of stored TFDS datasets.
"""

from __future__ import annotations

from typing import Any

from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.source_data import SPLITS
from kerasflow.tasks.refs import DatasetPart, DatasetRef


def combine(refs: list[DatasetRef], *, fingerprint: str, root: str, classes: list[Any] | None) -> DatasetRef:
    """The dataset of ``refs`` in order, their class names and slice values merged.

    Args:
        refs: the stored datasets, in read order; the first gives what they share (features, label, source,
            column types).
        fingerprint: the combined dataset's fingerprint.
        root: the storage root.
        classes: the recipe's ``data.classes``; when set, every part holds those classes in that order.

    Returns:
        A ref whose parts are those of every ref, flattened, each with its class and slice ids mapped to the
        combined ones.
    """
    first = refs[0]
    class_names, class_ids = _merged_classes([r.class_names for r in refs], configured=classes)
    slices: dict[str, list[str]] = {}
    slice_ids: list[dict[str, list[int]]] = [{} for _ in refs]
    for column in first.slices:
        values = sorted({value for ref in refs for value in ref.slices[column]})
        index = {value: i for i, value in enumerate(values)}
        slices[column] = values
        for number, ref in enumerate(refs):
            slice_ids[number][column] = [index[value] for value in ref.slices[column]]
    parts = [
        DatasetPart(
            fingerprint=part.fingerprint,
            uri=part.uri,
            builder_path=part.builder_path,
            splits=part.splits,
            class_ids=_composed(class_ids[number], part.class_ids),
            slice_ids={column: _composed(ids, part.slice_ids.get(column)) for column, ids in slice_ids[number].items()},
            statistics_path=part.statistics_path,
            # A part of a large file: the file's own dataset (what finds its parts again) stays with it.
            file_fingerprint=part.file_fingerprint or (ref.fingerprint if ref.parts else None),
        )
        for number, ref in enumerate(refs)
        for part in ref.stored_parts
    ]
    return DatasetRef(
        fingerprint=fingerprint,
        storage_root=root,
        uri=materialization.dataset_url(root, fingerprint),
        parts=parts,
        num_bytes=sum(ref.num_bytes for ref in refs),
        rows_per_example=first.rows_per_example,
        source=first.source,
        splits={split: sum(ref.splits.get(split, 0) for ref in refs) for split in SPLITS},
        feature_key=first.feature_key,
        label_key=first.label_key,
        feature_shape=first.feature_shape,
        feature_dtype=first.feature_dtype,
        num_classes=len(class_names),
        class_names=class_names,
        labels=first.labels,
        feature_names=first.feature_names,
        ignored_columns=sorted({column for ref in refs for column in ref.ignored_columns}),
        slices=slices,
        column_types=first.column_types,
        image_size=first.image_size,
    )


def _composed(outer: list[int] | None, inner: list[int] | None) -> list[int] | None:
    """The map part id -> combined id, from part id -> ref id (``inner``) and ref id -> combined id (``outer``)."""
    if inner is None:
        return outer
    if outer is None:
        return inner
    return [outer[i] for i in inner]


def _merged_classes(
    per_part: list[list[str]], *, configured: list[Any] | None
) -> tuple[list[str], list[list[int] | None]]:
    """The combined class names, and each part's ids mapped to them (None: the same ids).

    As :func:`tasks.ingest.labels.label_class_ids` names the classes of the table read
    whole: the configured classes; else integer labels ``0..max`` (each part's names are
    then ``0..its own max``, so its ids are already the table's); else the sorted text values.
    """
    if configured is not None or not any(per_part):  # configured (every part holds them), or numbers
        return list(per_part[0]), [None] * len(per_part)
    if all(names == [str(i) for i in range(len(names))] for names in per_part):
        widest = max(per_part, key=len)
        return list(widest), [None] * len(per_part)
    names = sorted({name for part in per_part for name in part})
    index = {name: i for i, name in enumerate(names)}
    return names, [[index[name] for name in part] for part in per_part]
