"""A team's own models package, as kerasflow sees it: a builder and a custom layer."""
