"""Scoring videos with the test protocol's views, per-video averaging, metrics and result files, shared by
the run's test, predict, the demo and windows (docs/deployment.md, "The views rule")."""
