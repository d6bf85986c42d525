"""Measuring every room below: FLOPs and parameters, model, attention, training, data and deployment
benchmarks, side-by-side comparisons with other libraries (docs/performance.md). Tests never assert speeds."""
