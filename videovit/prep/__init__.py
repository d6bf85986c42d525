"""Offline data tools, apart from the runtime pipeline: re-encoding videos, checking them, building the
K400 / SSV2 lists and the synthetic datasets (docs/data.md)."""
