"""End-to-end procedures built from the layers below: the synthetic demo (docs/architecture.md)."""
