"""The steps of the retraining pipeline, one module (or package) per step.

Each step exposes one Prefect task whose body calls plain functions of the same module;
records passed between steps live in :mod:`kerasflow.tasks.refs`, the config tree in
:mod:`kerasflow.tasks.config`.
"""
