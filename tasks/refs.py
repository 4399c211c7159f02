"""Records passed between tasks: small, frozen, JSON-serialisable.

They carry URIs into the storage root, fingerprints and plain floats, never tensors,
datasets or Keras objects, so any task can be retried, cached or run on another machine
from its inputs alone (the TFX contract of typed artifacts by URI).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Ref(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunTarget(_Ref):
    """Where a run's steps read and write: the storage root, the model's name, the alias it promotes.

    The steps that touch the registry or the run folders receive this, not the whole config.
    """

    root: str = Field(description="the storage root, any fsspec URL (storage.root)")
    name: str = Field(description="the model's name in the registry (model.name)")
    alias: str = Field(description="the alias a passed candidate moves (registry.alias)")


class DatasetPart(_Ref):
    """One stored TFDS dataset a dataset reads: the whole of it, one partition (file) of a table, or rows of a file."""

    fingerprint: str
    uri: str = Field(description="the part's dataset folder: <root>/datasets/<fingerprint>")
    builder_path: str = Field(description="the TFDS folder inside it: <attempt>/<name>/<version>")
    splits: dict[str, int] = Field(description="split name -> rows of this part")
    class_ids: list[int] | None = Field(
        None, description="the dataset's class id of each of the part's own label ids; None: the same ids"
    )
    slice_ids: dict[str, list[int]] = Field(
        default_factory=dict, description="slice column -> the dataset's value index of each of the part's values"
    )
    statistics_path: str | None = Field(None, description="the part's statistics.json inside its dataset folder")
    file_fingerprint: str | None = Field(
        None,
        description="the dataset of the file whose rows the part is one range of (a file too large for one part, "
        "tasks/ingest/file_parts.py); it stays while the part does",
    )


class DatasetRef(_Ref):
    """A materialized dataset in TFDS format under ``<root>/datasets/<fingerprint>/``.

    Stored whole (``builder_path``), or, for a table of several files, as the list of its
    files' own materializations (``parts``, tasks/ingest/partitions.py), so a new file
    costs one file's work.
    """

    fingerprint: str
    storage_root: str
    uri: str = Field(description="the dataset folder: <root>/datasets/<fingerprint> (any fsspec URL)")
    builder_path: str | None = Field(
        None, description="the TFDS folder inside it: <attempt>/<name>/<version>; None when stored as parts"
    )
    parts: list[DatasetPart] = Field(default_factory=list, description="the partitions read in order, if any")
    num_bytes: int = Field(0, description="size of the stored examples")
    rows_per_example: int = Field(1, description="rows stored per TFDS example (blocks of a table); readers unbatch")
    source: str
    splits: dict[str, int] = Field(description="split name -> number of rows (examples as the model sees them)")
    feature_key: str
    label_key: str
    feature_shape: tuple[int, ...]
    feature_dtype: str
    num_classes: int = Field(description="classes of a classifier's labels; 0 for numbers (a regression target)")
    class_names: list[str]
    labels: Literal["classes", "numbers"] = Field("classes", description="label column read as class ids or numbers")
    feature_names: list[str] | None = None
    ignored_columns: list[str] = Field(default_factory=list, description="file columns outside the schema")
    slices: dict[str, list[str]] = Field(
        default_factory=dict, description="slice column -> its values; stored as codes beside the features"
    )
    column_types: dict[str, str] | None = Field(
        None,
        description="a table's feature columns and their types, in order (models/column_types.py); the model takes "
        "one input per column. None: the features are one tensor (images, text)",
    )
    statistics_path: str | None = Field(
        None, description="statistics.json inside the dataset folder (tasks/data/statistics.py); parts have their own"
    )
    image_size: tuple[int, int] | None = Field(
        None,
        description="images stored encoded, decoded and resized to (height, width) as they are read; the channels "
        "are feature_shape's last axis",
    )

    @property
    def typed(self) -> bool:
        """Whether the model's input is a dict of typed columns (a table)."""
        return self.column_types is not None

    @property
    def stored_parts(self) -> list[DatasetPart]:
        """What to read, in order: the parts, or the dataset itself as its one part."""
        if self.parts:
            return list(self.parts)
        if self.builder_path is None:
            raise ValueError(f"dataset {self.fingerprint} names neither its TFDS folder nor its parts")
        return [
            DatasetPart(
                fingerprint=self.fingerprint,
                uri=self.uri,
                builder_path=self.builder_path,
                splits=self.splits,
                statistics_path=self.statistics_path,
            )
        ]


class TrainedModel(_Ref):
    """A candidate model written by the train task, with how its training went."""

    run_id: str
    model_uri: str
    saved_model_uri: str | None = Field(None, description="the same model exported as a TF SavedModel")
    sha256: str
    dataset_fingerprint: str
    epochs_completed: int
    initial_epoch: int = Field(description="0 for a fresh start, N when resumed after epoch N")
    history: dict[str, list[float]]
    strategy: str
    replicas: int
    global_batch_size: int
    train_seconds: float
    warm_started_from: int | None = Field(None, description="the registered version training started from, if any")


class Metrics(_Ref):
    """Metrics of one model on one split: overall values and per class."""

    split: str
    num_examples: int
    values: dict[str, float]
    per_class: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="metric -> class name -> value (classifiers)"
    )
    per_slice: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="slice column -> value -> metric -> value"
    )
    confusion: list[list[int]] | None = Field(None, description="counts of [true class][predicted class]")


class Difference(_Ref):
    """One metric's candidate - baseline on the same rows, with its standard error (tasks/learning/paired.py).

    For a slice of the candidate alone (no baseline), ``estimate`` is the candidate's value
    and ``se`` its standard error. The interval at any confidence is ``estimate ± z·se``, so
    the gate chooses the confidence without measuring again.
    """

    candidate: float
    baseline: float | None = None
    estimate: float = Field(description="candidate - baseline; the candidate's value when there is no baseline")
    se: float = Field(ge=0, description="standard error of the estimate over the test rows")
    relative_se: float | None = Field(None, description="standard error of estimate / |baseline|")
    method: Literal["normal", "bootstrap"] = Field(
        description="normal: a mean or smooth function of means (exact paired sd, delta method); bootstrap: Poisson"
    )


class GateEvidence(_Ref):
    """What the gate decides on beyond point values: each metric's paired difference and each slice's noise.

    Small (a few floats per metric), never rows: a recorded decision can be made again from it.
    """

    rows: int = Field(description="test rows both models were measured on")
    changes: dict[str, Difference] = Field(
        default_factory=dict, description="metric -> candidate - baseline; empty without a baseline"
    )
    slices: dict[str, dict[str, dict[str, Difference]]] = Field(
        default_factory=dict, description="slice column -> value -> metric -> the candidate's value and its noise"
    )
    seed: int = Field(0, description="the seed of every bootstrap draw")
    replicates: int = Field(0, description="bootstrap replicates drawn (0: none was needed)")


class Evaluation(_Ref):
    """The candidate's metrics and, when production has a model, the baseline's."""

    candidate: Metrics
    baseline: Metrics | None = None
    evidence: GateEvidence | None = Field(
        None, description="paired differences with their noise, measured in the same pass (None: point values only)"
    )
    baseline_version: int | None = None
    baseline_note: str | None = Field(None, description="why there is no baseline, when there is none")
    baseline_error: str | None = Field(
        None, description="the model under the alias exists but could not be loaded or evaluated: why"
    )
    alias_version: int | None = Field(
        None, description="the version under the alias when the candidate was evaluated (None: none)"
    )
    plots: dict[str, str] = Field(
        default_factory=dict,
        description="PNG file name -> URL in the run folder (learning curves; the task's own: a confusion matrix, "
        "predicted vs actual and residuals)",
    )


class GateCheck(_Ref):
    """One check of the gate; a change or slice check decided with confidence carries its interval."""

    metric: str
    kind: Literal["value", "change", "slice", "baseline"]
    value: float | None
    threshold: str
    baseline: float | None = None
    verdict: Literal["pass", "fail", "inconclusive", "no baseline"]
    detail: str
    estimate: float | None = Field(None, description="candidate - baseline (relative: of |baseline|); a slice: value")
    low: float | None = Field(None, description="the interval's lower end, in the estimate's units")
    high: float | None = Field(None, description="the interval's upper end")
    margin: float | None = Field(None, description="max_regression, min_improvement or the slice's bound")
    confidence: float | None = None
    mdd: float | None = Field(None, description="smallest difference this test size detects at 80% power")
    rows_needed: int | None = Field(None, description="inconclusive: about how many test rows would decide it")
    point_verdict: Literal["pass", "fail"] | None = Field(
        None, description="how comparing the point values alone (the gate before issue 31) would have decided"
    )


class GateReport(_Ref):
    """Every check the gate ran and whether the candidate may be promoted.

    ``decision`` is the gate's own outcome (fail when a check fails, else inconclusive when
    one is, else pass); ``passed`` is whether the candidate may be promoted, which for an
    inconclusive decision is ``gate.inconclusive``'s policy.
    """

    passed: bool
    checks: list[GateCheck]
    decision: Literal["pass", "fail", "inconclusive"] | None = Field(None, description="None: recorded before it")
    inconclusive_policy: Literal["reject", "keep_production", "promote"] | None = None
    baseline_version: int | None = None
    alias_version: int | None = Field(
        None,
        description="the version under the alias when the candidate was judged: promotion moves the alias only from it",
    )

    def judged_against(self) -> int | None:
        """The alias's version this report judged against (a report recorded before ``alias_version``: its baseline)."""
        return self.alias_version if "alias_version" in self.model_fields_set else self.baseline_version

    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if check.verdict == "fail"]

    def inconclusive(self) -> list[GateCheck]:
        return [check for check in self.checks if check.verdict == "inconclusive"]

    def summary(self) -> str:
        undecided = "; ".join(check.detail for check in self.inconclusive())
        if self.passed:
            if self.decision == "inconclusive":
                return f"promoted on an inconclusive gate (gate.inconclusive: promote): {undecided}"
            return f"passed {len(self.checks)} check(s)"
        if self.decision == "inconclusive":
            kept = "production kept" if self.inconclusive_policy == "keep_production" else "rejected"
            return f"{kept}, the test split cannot tell: {undecided}"
        return "rejected: " + "; ".join(check.detail for check in self.failures())


class ModelVersion(_Ref):
    """A registered version, and where the alias points after this run."""

    name: str
    version: int
    uri: str
    status: Literal["registered", "rejected"]
    sha256: str
    alias: str | None = None
    previous_version: int | None = None


class Candidate(_Ref):
    """A registered candidate, its gate report, and what the run's summary says of it.

    Everything the run needs after the gate: a run suspended for approval records it and,
    resumed, goes on from it without ingesting, training or evaluating again.
    """

    dataset: DatasetRef
    version: ModelVersion
    report: GateReport
    metrics: dict[str, float]
    run_dir: str
    reason: str | None = None


class RunSummary(_Ref):
    """What a training run did, for the command line and the flow's result."""

    model_name: str
    outcome: Literal["promoted", "rejected", "skipped"]
    message: str
    dataset_fingerprint: str
    storage_root: str
    version: ModelVersion | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    gate: GateReport | None = None
    run_dir: str | None = None
    reason: str | None = Field(None, description="why the run trained (or skipped) against production")


class ScoredTable(_Ref):
    """Predictions written by batch scoring: where, how many rows, by which model version."""

    model_name: str
    model_version: int
    rows: int
    output: str
