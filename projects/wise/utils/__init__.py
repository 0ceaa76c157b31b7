"""Helpers shared by the tools and modules: I/O, checkpoints, launching."""
