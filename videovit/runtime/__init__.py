"""Where a run computes: devices, process groups under torchrun, precision and compilation (docs/engine.md)."""
