"""Training and evaluation engine: ``run(cfg)`` trains and/or tests as the config says."""
from videovit.engine.run import run

__all__ = ["run"]
