"""kerasflow's own process plumbing: fast exit, deferred Keras namespaces, children that die with
their parent."""
