"""The architecture fields of a one-stage ViT family (TimeSformer, VideoMAE), checked once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from videovit.models.family import ArchConfig, as_tuple


@dataclass(frozen=True)
class ViTArchConfig(ArchConfig):
    """Width, depth, heads and patches of a ViT with one stage of blocks.

    One stage, so ``embed_dims``, ``depths`` and ``num_heads`` hold one value each (the config keys
    MODEL.EMBED_DIMS/DEPTHS/NUM_HEADS are lists for every family). ``label`` names the family in messages.
    """

    label: ClassVar[str] = "ViT"

    embed_dims: tuple[int, ...] = (768,)     # token width
    depths: tuple[int, ...] = (12,)          # blocks
    num_heads: tuple[int, ...] = (12,)       # attention heads
    patch_size: int = 16                     # side of the square patches of each frame
    img_size: int = 224                      # side of the square frames the model is built for
    mlp_ratio: float = 4.0                   # MLP hidden width / token width
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        as_tuple(self, "embed_dims", "depths", "num_heads")
        for name in ("embed_dims", "depths", "num_heads"):
            value = getattr(self, name)
            if len(value) != 1 or value[0] < 1:
                raise ValueError(f"{self.label} {name} needs one positive value (a single stage), got {list(value)}")
        if self.width % self.num_heads[0]:
            raise ValueError(f"{self.label} width {self.width} is not divisible by {self.num_heads[0]} heads; give "
                             "num_heads that divide embed_dims")
        if self.patch_size < 1 or self.img_size < self.patch_size or self.img_size % self.patch_size:
            raise ValueError(f"{self.label} img_size {self.img_size} must be a multiple of patch_size "
                             f"{self.patch_size} (square frames cut into whole patches)")
        if self.mlp_ratio <= 0:
            raise ValueError(f"{self.label} mlp_ratio must be > 0, got {self.mlp_ratio}")

    @property
    def width(self) -> int:
        """Token width C."""
        return self.embed_dims[0]

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return self.depths[0]

    @property
    def grid(self) -> int:
        """Patches per frame side."""
        return self.img_size // self.patch_size
