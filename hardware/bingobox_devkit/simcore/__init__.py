"""Deterministic simulation of the store core: ``run.run_seed``, ``bingobox simulate``."""
