"""Where training runs: the launchers (in process, local processes, Kubernetes, Slurm), the
launcher/worker contract and the worker."""
