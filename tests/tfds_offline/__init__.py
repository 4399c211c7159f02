"""TFDS builders for tests that must not reach the network."""
