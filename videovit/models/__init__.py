"""Video backbones, their registry, and construction from a config."""
from videovit.models.build import build_model
from videovit.models.registry import create_model, list_models, register_model

__all__ = ["build_model", "create_model", "list_models", "register_model"]
