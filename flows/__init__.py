"""Composition and the command line: the flows wire tasks together, no ML logic here."""
