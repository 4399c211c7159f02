"""The stored dataset format every step reads: materialization, parts, the read pipeline, splits,
statistics."""
