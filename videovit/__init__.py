"""videovit: RegionViT, VOLO and TimeSformer video transformers for action recognition."""
from videovit.api import create_model
from videovit.inference import load_for_inference as from_pretrained
from videovit.models import build_model, list_models

__all__ = ["build_model", "create_model", "from_pretrained", "list_models"]
__version__ = "0.1.0"
