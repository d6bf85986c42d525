"""videovit: RegionViT and VOLO video transformers for action recognition."""
from videovit.models import build_model, create_model, list_models
from videovit.pretrained import from_pretrained

__all__ = ["build_model", "create_model", "from_pretrained", "list_models"]
__version__ = "0.1.0"
