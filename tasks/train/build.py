"""Building the recipe's model: resolve its builder, call it with the input spec, adapt, compile.

One place, used by single-host training (fit.py), every multi-worker worker (worker.py)
and the check run before any work (``check_definition``), so all three build the
same model the same way whatever the builder is: the zoo's or a team's own.
"""

from __future__ import annotations

from typing import Any

from kerasflow.models import builders, private_apis
from kerasflow.models.column_types import Encoder
from kerasflow.models.input_spec import InputSpec
from kerasflow.tasks.config import ConfigError, ModelConfig, TrainConfig
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.failures import KerasflowError
from kerasflow.tasks.learning.learning_tasks import TASK_REGISTRY, TASKS, LearningTask, choose_task
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.train import recipe_objects, table_encoding
from kerasflow.tasks.train.plan import TrainingPlan, make_plan
from kerasflow.tasks.train.recipe_objects import check_training
from kerasflow.tasks.train.warm_start import resolve_warm_start, warm_start_model


def needs_adapting(layer: Any) -> bool:
    """Whether ``layer`` is a Keras preprocessing layer built without what ``adapt`` learns."""
    import keras

    if isinstance(layer, keras.layers.Normalization):
        return getattr(layer, "input_mean", None) is None
    if isinstance(layer, (keras.layers.TextVectorization, keras.layers.StringLookup, keras.layers.IntegerLookup)):
        return not layer.get_vocabulary(include_special_tokens=False)
    if isinstance(layer, keras.layers.Discretization):
        return getattr(layer, "bin_boundaries", None) is None
    return False


def task_of(model: ModelConfig, ref: DatasetRef) -> LearningTask:
    """The recipe's learning task (or the classifier the data's classes call for).

    Args:
        model: the recipe's ``model`` section.
        ref: the dataset.

    Raises:
        ConfigError: ``model.task`` does not exist or does not fit the dataset's labels.
    """
    return choose_task(model.task, num_classes=model.num_classes or ref.num_classes, labels=ref.labels)


def class_names_of(model: ModelConfig, ref: DatasetRef) -> tuple[str, ...]:
    """The classes the model predicts: the data's, padded to ``model.num_classes`` when it asks for more.

    Args:
        model: the recipe's ``model`` section.
        ref: the dataset.
    """
    num_classes = model.num_classes or ref.num_classes
    return tuple(ref.class_names[:num_classes]) + tuple(str(i) for i in range(len(ref.class_names), num_classes))


def input_spec_of(ref: DatasetRef, model: ModelConfig, *, encoder: Encoder | None = None) -> InputSpec:
    """The builder's view of the data, and of the output its task asks for.

    ``encoder``: a typed table's encoding (tasks/train/table_encoding.py); the builder then
    receives the encoded vector, and the spec names its entries and the raw columns.

    Args:
        ref: the dataset.
        model: the recipe's ``model`` section.
        encoder: a typed table's encoding; None when the builder receives the stored features.
    """
    return make_input_spec(
        feature_shape=(encoder.width,) if encoder is not None else tuple(ref.feature_shape),
        feature_dtype="float32" if encoder is not None else ref.feature_dtype,
        class_names=class_names_of(model, ref),
        task=task_of(model, ref),
        columns=tuple(encoder.names) if encoder is not None else tuple(ref.feature_names or ()) or None,
        target_stats=train_target_stats(ref) if ref.labels == "numbers" else None,
        column_types=tuple((ref.column_types or {}).items()) if ref.typed else None,
    )


def make_input_spec(
    *,
    feature_shape: tuple[int, ...],
    feature_dtype: str,
    class_names: tuple[str, ...],
    task: LearningTask,
    columns: tuple[str, ...] | None = None,
    target_stats: tuple[float, float] | None = None,
    column_types: tuple[tuple[str, str], ...] | None = None,
) -> InputSpec:
    """An input spec for ``task``: what a builder is called with (also to test a builder without data).

    Args:
        feature_shape: one example's shape, as the builder receives it.
        feature_dtype: the examples' dtype (``float32``, ``string``...).
        class_names: the classes the model predicts; empty for a regression.
        task: the learning task, which decides the output.
        columns: the names of the feature vector's entries (tables); None for images and text.
        target_stats: a regression target's (mean, standard deviation) on the training split.
        column_types: a typed table's raw columns and their types.
    """
    units, activation = task.output(len(class_names))
    mean, std = target_stats if target_stats is not None else (None, None)
    return InputSpec(
        feature_shape=tuple(feature_shape),
        feature_dtype=feature_dtype,
        class_names=tuple(class_names),
        task=task.name,
        columns=columns,
        num_outputs=units,
        output_activation=activation,
        output_widths=task.output_widths(len(class_names)),
        target_mean=mean,
        target_std=std,
        column_types=column_types,
    )


def _output_width(model: Any, *, fallback: int) -> int:
    """The last axis of the model's output; a subclassed model not built yet has the task's."""
    try:
        return int(model.output_shape[-1])
    except (AttributeError, ValueError, TypeError, IndexError):
        return fallback


def train_target_stats(ref: DatasetRef) -> tuple[float, float]:
    """Mean and standard deviation of a regression target on the training split, in one streaming pass."""
    import numpy as np

    count, total, squares = 0, 0.0, 0.0
    for labels in load_batches(ref, "train", batch_size=65536, by_column=False).map(lambda x, y: y).as_numpy_iterator():
        values = np.asarray(labels, dtype="float64").reshape(-1)
        count, total, squares = count + len(values), total + values.sum(), squares + (values**2).sum()
    mean = total / count if count else 0.0
    variance = max(0.0, squares / count - mean**2) if count else 0.0
    return float(mean), float(variance**0.5) or 1.0


def resolve_builder(model: ModelConfig) -> builders.Builder:
    """The recipe's builder, its params checked against its signature; a ConfigError otherwise.

    Raises:
        ConfigError: the builder cannot be found, or does not take one of ``model.params``.
    """
    reference = model.builder_reference
    try:
        builder = builders.resolve(reference)
        builders.check_params(reference, builder, model.params)
    except builders.BuilderError as error:
        raise ConfigError(str(error)) from None
    return builder


def check_definition(config: TrainConfig) -> None:
    """Refuse, before any work (exit 2): a builder that cannot be found, params it does not
    take, or anything the training section names that does not resolve.

    Raises:
        ConfigError: the builder, its params, the training section's objects or the warm start do not resolve.
    """

    resolve_builder(config.model)
    check_training(config.training)
    check_monitors(config)
    # A registered model of another architecture is named now, not after ingest.
    resolve_warm_start(config.training.warm_start, config.model, root=config.storage.root)


def check_monitors(config: TrainConfig, ref: DatasetRef | None = None) -> None:
    """Refuse an early-stopping or plateau monitor the model will not report, before the work it would waste.

    Without ``ref`` (before ingest) a monitor must be reported by some task the recipe can
    reach (a ``val_auc`` fits a binary label, not a regression target); with the dataset,
    by the task its labels call for (300 classes are multiclass: no AUC), which the flow
    checks right after ingest. Only kerasflow's own builders are checked here: they return
    models kerasflow compiles, whereas a team's builder may compile its model with metrics
    of its own (``build_compiled_model`` checks what is not compiled, once built).

    Args:
        config: the recipe's config (its model, data and training sections).
        ref: the dataset, once ingested; None before.

    Raises:
        ConfigError: an enabled monitor is none of the names the model can report.
    """
    training = config.training
    watched = training.early_stopping.enabled or training.schedule.kind == "reduce_on_plateau"
    if not watched or not getattr(resolve_builder(config.model), "__module__", "").startswith("kerasflow."):
        return
    if ref is not None:
        tasks, num_classes = [task_of(config.model, ref)], config.model.num_classes or ref.num_classes
    else:
        tasks, num_classes = _reachable_tasks(config)
    reported = {"loss", *(_metric_name(m) for m in recipe_objects.extra_metrics(training))}
    for task in tasks:
        for width in task.output_widths(num_classes or 2):
            for one_hot in (False, True):
                _, metrics = task.training_objects(
                    label_smoothing=training.label_smoothing, one_hot=one_hot, output_width=width
                )
                reported.update(_metric_name(m) for m in metrics)
    recipe_objects.check_monitored(training, reported=sorted(reported), task=" or ".join(t.name for t in tasks))


def _reachable_tasks(config: TrainConfig) -> tuple[list[LearningTask], int | None]:
    """The tasks the recipe can train before its data is read, and the classes if it names them."""
    if config.model.task is not None:
        task = TASK_REGISTRY.get(config.model.task)
        return [task], config.model.num_classes
    if config.data.labels == "numbers":
        return [TASKS["regression"]], None
    num_classes = config.model.num_classes or (len(config.data.classes) if config.data.classes else None)
    if num_classes is not None:
        return [choose_task(None, num_classes=num_classes)], num_classes
    return [TASKS["binary"], TASKS["multiclass"]], None


def _metric_name(metric: Any) -> str:
    return getattr(metric, "name", None) or metric.__name__


def build_model(config: TrainConfig, ref: DatasetRef) -> Any:
    """Call the builder with the input spec and the recipe's params; check what it returned; adapt it.

    A typed table's model is its encoding (made from the training statistics) in front of
    the builder's model, whose own preprocessing is adapted on the encoded training split.

    Args:
        config: the recipe's config.
        ref: the dataset the model is built for; its training split adapts the preprocessing.

    Raises:
        ConfigError: the builder cannot be resolved, refuses the params, or returns a model that does not fit
            the task; or ``model.augmentation`` is set for examples that are not images.
    """
    reference = config.model.builder_reference
    builder = resolve_builder(config.model)
    encoder = table_encoding.encoder_for(config.data, ref) if ref.typed else None
    spec = input_spec_of(ref, config.model, encoder=encoder)
    try:
        model = builder(input_spec=spec, **config.model.params)
    except TypeError as error:
        raise ConfigError(f"builder {reference!r} failed with params {config.model.params}: {error}") from None
    except (MemoryError, KerasflowError):
        raise
    except Exception as error:
        if type(error).__name__ == "ResourceExhaustedError":  # out of device memory: another try may fit
            raise
        # The builder's own code failed on this input spec: every try would fail the same way.
        raise ConfigError(
            f"builder {reference!r} raised {type(error).__name__} on an input of shape {spec.feature_shape} "
            f"({spec.task}, {len(spec.class_names)} classes): {error}; fix the builder, or its model.params"
        ) from None
    try:
        builders.check_model(reference, model, spec)
    except builders.BuilderError as error:
        raise ConfigError(str(error)) from None
    if encoder is None:
        adapt_preprocessing(model, ref)
        return augmented(model, config.model, feature_shape=tuple(ref.feature_shape))
    adapt_preprocessing(model, ref, encode=table_encoding.column_encoding(encoder))
    return table_encoding.assemble(encoder, model)


def augmented(body: Any, model: ModelConfig, *, feature_shape: tuple[int, ...]) -> Any:
    """``body`` behind the Keras guide's image augmentation (``model.augmentation``), or ``body`` alone.

    ``RandomFlip``, ``RandomRotation`` and ``RandomZoom`` act only in training: the saved
    model scores an image as it is.

    Args:
        body: the model to augment.
        model: the recipe's ``model`` section.
        feature_shape: one example's shape: ``(height, width, channels)``.

    Raises:
        ConfigError: ``model.augmentation`` is set and the examples are not images.
    """
    if model.augmentation is None:
        return body
    if len(feature_shape) != 3:
        raise ConfigError(
            f"received model.augmentation for examples of shape {feature_shape}, expected images "
            "(height, width, channels); leave model.augmentation out for this data"
        )
    import keras

    spec = model.augmentation
    layers = [
        *([keras.layers.RandomFlip(spec.flip)] if spec.flip else []),
        *([keras.layers.RandomRotation(spec.rotation)] if spec.rotation else []),
        *([keras.layers.RandomZoom(spec.zoom)] if spec.zoom else []),
    ]
    inputs = keras.Input(shape=feature_shape, name="image")
    x = inputs
    for layer in layers:
        x = layer(x)
    wrapped = keras.Model(inputs, body(x), name=body.name)
    if getattr(body, "compiled", False):
        wrapped.compile_from_config(body.get_compile_config())
    return wrapped


def adapt_preprocessing(model: Any, ref: DatasetRef, *, batch_size: int = 4096, encode: Any = None) -> list[str]:
    """Adapt every un-adapted preprocessing layer fed straight by a model input, on the training split.

    Returns the names of the layers adapted. This is how a builder gets learned
    preprocessing (feature statistics, a vocabulary) without reading data; the result is
    inside the saved model, so it scores raw inputs. ``encode``: a typed table's encoding,
    through which the split is fed to ``model`` (the builder's, which takes it encoded).

    Args:
        model: the builder's model.
        ref: the dataset whose training split the layers adapt on.
        batch_size: rows per batch fed to ``adapt``.
        encode: maps a batch of raw columns to the encoded vector ``model`` takes; None to feed the split as
            stored.
    """

    inputs = {id(t) for t in getattr(model, "inputs", None) or []}
    adapted = []
    for layer in model.layers:
        if not needs_adapting(layer):
            continue
        fed = [node for node in private_apis.call_nodes(layer) if any(id(t) in inputs for t in node.input_tensors)]
        if not fed:
            continue
        batches = load_batches(ref, "train", batch_size=batch_size).map(lambda x, y: x)
        layer.adapt(batches.map(encode) if encode is not None else batches)
        adapted.append(layer.name)
    return adapted


def build_compiled_model(
    config: TrainConfig,
    ref: DatasetRef,
    *,
    replicas: int = 1,
    plan: TrainingPlan | None = None,
    warm_start_version: int | None = None,
) -> Any:
    """The recipe's model, adapted and compiled from the training section (call under a scope).

    A model the builder compiled itself is kept as compiled. Otherwise the task's loss
    and metrics (or the recipe's loss, plus its metrics), the recipe's optimizer with its
    parameters and schedule: the same objects for ``fit`` and for the multi-worker loop.
    With ``warm_start_version`` the registered model is the starting point (tasks/train/warm_start.py).

    Args:
        config: the recipe's config.
        ref: the dataset.
        replicas: replicas in sync (devices times workers); used when ``plan`` is None.
        plan: the training plan; None to make it from ``config``, ``ref`` and ``replicas``.
        warm_start_version: the registered version to start from; None to build the model anew.
    """
    from kerasflow.models import zoo

    plan = plan or make_plan(config, ref, replicas=replicas)
    if warm_start_version is not None:
        model = warm_start_model(
            config.model, warm_start_version, root=config.storage.root, feature_shape=tuple(ref.feature_shape)
        )
    else:
        model = build_model(config, ref)
    if getattr(model, "compiled", False):
        return model
    training = config.training
    rate = recipe_objects.learning_rate_schedule(
        training, learning_rate=plan.learning_rate, steps_per_epoch=plan.steps_per_epoch
    )
    task = task_of(config.model, ref)
    default_loss, metrics = task.training_objects(
        label_smoothing=training.label_smoothing,
        one_hot=plan.one_hot_classes is not None,
        output_width=_output_width(model, fallback=task.output(len(class_names_of(config.model, ref)))[0]),
    )
    metrics = [*metrics, *recipe_objects.extra_metrics(training)]
    recipe_objects.check_monitored(training, reported=["loss", *(_metric_name(m) for m in metrics)], task=task.name)
    return zoo.compile_model(
        model,
        optimizer=recipe_objects.optimizer(training, learning_rate=rate),
        loss=default_loss if (custom := recipe_objects.custom_loss(training)) is None else custom,
        metrics=metrics,
        jit_compile=config.runtime.jit_compile,
        steps_per_execution=plan.steps_per_execution,
    )
