"""``python -m kerasflow.flows.cli``: the ``kerasflow`` command."""

from kerasflow.flows.cli import main

main()
