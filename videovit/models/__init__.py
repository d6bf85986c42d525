"""Video backbones: the family contract, the registry, and construction from a config."""
from videovit.models.build import architecture_overrides, build_model, complete_config
from videovit.models.family import (
    ArchConfig,
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    TinyVariant,
    TransformersFormat,
    VideoBackbone,
)
from videovit.models.registry import (
    build_variant,
    families,
    family_of,
    get_family,
    list_models,
    register_family,
    tiny_variants,
)

__all__ = ["ArchConfig", "CheckpointLayout", "ConfigKey", "ModelFamily", "TinyVariant", "TransformersFormat",
           "VideoBackbone", "architecture_overrides", "build_model", "build_variant", "complete_config", "families",
           "family_of", "get_family", "list_models", "register_family", "tiny_variants"]
