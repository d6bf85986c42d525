"""The model-family contract: what every backbone offers and what the rest of videovit may ask of it.

A family is one module under ``videovit/models/`` that defines three things (docs/adding-a-backbone.md):
- an architecture dataclass (``ArchConfig`` subclass) whose fields are the keyword overrides
  ``create_model`` accepts, validated in ``__post_init__``;
- a model class (``VideoBackbone`` subclass) with the one forward API shared by every family;
- a ``ModelFamily`` instance, registered with ``register_family``, naming its variants and tiny test
  variants, the config keys only it has, the checkpoint layouts of its official files, and the
  checkpoint hooks (accept a state dict, rename foreign keys, resize geometry, inflate image weights).
Nothing outside ``videovit/models/`` uses more than this contract: no room names a family or reaches
into its internals.
"""
from __future__ import annotations

import dataclasses
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import nn
from yacs.config import CfgNode

from videovit.errors import CheckpointError, ModelOptionError
from videovit.models.preprocessing import Preprocessing


@dataclass(frozen=True)
class ArchConfig:
    """Base of every family's architecture dataclass: the fields are ``create_model``'s overrides.

    The switches below are every family's (``build_model`` always passes them); subclasses add their
    architecture fields and validate them in ``__post_init__``, raising ``ValueError`` naming the field.
    Families that insert temporal layers into an image network derive from
    ``videovit.models.temporal.InflatedArchConfig``, which adds the inflation switches.
    """

    SWITCHES: ClassVar[bool] = True      # these fields are switches, listed after the architecture's

    drop_path_rate: float = 0.0          # stochastic depth at the last block, drawn once per clip
    drop_rate: float = 0.0               # dropout before the classifier
    act_checkpoint: bool = False         # recompute each block in the backward pass (models/recompute.py)

    def __post_init__(self) -> None:
        """Nothing to check here; subclasses check their fields and call ``super().__post_init__()``."""

    def with_overrides(self, overrides: Mapping[str, Any]) -> ArchConfig:
        """A copy with ``overrides`` applied; an unknown name raises a ValueError listing the valid ones."""
        switches = {name for base in type(self).__mro__ if base.__dict__.get("SWITCHES")
                    for name in base.__dict__.get("__annotations__", {})}
        names = [f.name for f in dataclasses.fields(self)]
        valid = [name for name in names if name not in switches] + [name for name in names if name in switches]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ModelOptionError(f"{type(self).__name__}: unknown option(s) {', '.join(unknown)}; valid options "
                             f"are {', '.join(valid)}")
        return dataclasses.replace(self, **dict(overrides))


def as_tuple(config: ArchConfig, *names: str) -> None:
    """Store list-valued fields of a frozen ``config`` as tuples (overrides often arrive as lists)."""
    for name in names:
        object.__setattr__(config, name, tuple(getattr(config, name)))


class VideoBackbone(nn.Module, metaclass=ABCMeta):
    """The API every video backbone has, whatever its family.

    - ``forward(clip)``: ``(B, 3, T, H, W)`` clip (or ``(B, 3, H, W)`` image when ``num_frames == 1``)
      -> ``(B, num_classes)`` logits; with ``num_classes == 0`` the ``(B, num_features)`` clip embedding.
    - ``forward_features(clip)``: the clip -> the tokens ``forward_head`` pools, batch first, in the
      family's layout (``features_layout``; table in docs/models.md).
    - ``forward_head(features, pre_logits=False)``: logits; with ``pre_logits`` the ``(B, num_features)``
      clip embedding, the one way to pool in every family.
    - ``reset_classifier(n)``: a fresh n-way classifier (0: none, ``forward`` returns embeddings).
    - ``set_grad_checkpointing(enable)``: recompute block activations in the backward pass (the one rule
      of ``videovit.models.recompute``, switched by ``grad_checkpointing``).
    - ``no_weight_decay()``: exact names of the parameters kept free of weight decay besides the 1-D
      ones (embeddings, position tables); ``layer_id(name)`` / ``num_layers``: depth of a parameter
      for layer-wise learning-rate decay, 0 (stem) to ``num_layers - 1`` (final norm and head).
    - ``cfg``, ``class_names``, ``preprocessing``: set on a trained model by the checkpoint room
      (``trained_parts()`` returns them); a family never sets them.
    """

    family: ClassVar[str]
    features_layout: ClassVar[str]  # what forward_features returns, e.g. "(B, T, C)"
    num_frames: int
    num_classes: int
    num_features: int
    temporal: bool  # False: no temporal layers (frame-averaged image model), clips of any length
    grad_checkpointing: bool  # the one activation-checkpointing switch (models/recompute.py)
    # A trained model (``videovit.from_pretrained``) carries what using it needs besides its weights: the
    # config it was trained and is tested with, its class names and its input protocol. Plain attributes,
    # never parameters or buffers: state_dict keys, torch.compile, ONNX export and DDP see the same
    # module as without them (docs/deployment.md). None on a model built from scratch.
    cfg: CfgNode | None = None
    class_names: list[str] | None = None
    preprocessing: Preprocessing | None = None

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip (or image for a one-frame model) -> logits (embeddings without a classifier)."""
        return self.forward_head(self.forward_features(self.as_clip(clip)))

    def trained_parts(self) -> tuple[CfgNode, list[str], Preprocessing]:
        """``(cfg, class_names, preprocessing)`` of a trained model; CheckpointError for one without them."""
        if self.cfg is None or self.class_names is None or self.preprocessing is None:
            raise CheckpointError(f"this {type(self).__name__} carries no config and class names: load it with "
                                  "videovit.from_pretrained (a checkpoint_*.pyth of tools/run_net.py or an exported "
                                  "folder)")
        return self.cfg, self.class_names, self.preprocessing

    def as_clip(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as a ``(B, 3, T, H, W)`` clip; an image batch is accepted by one-frame models, clips of any
        length by models without temporal layers."""
        if x.dim() == 4 and self.num_frames == 1:
            return x[:, :, None]
        if x.dim() != 5 or (self.temporal and x.shape[2] != self.num_frames):
            raise ValueError(f"expected clips of shape (B, 3, {self.num_frames}, H, W) for this "
                             f"{self.num_frames}-frame model, got {tuple(x.shape)}; build the model with "
                             f"num_frames={_frames_of(x)} (a checkpoint's frame-dependent weights are resized when "
                             "it is loaded)")
        return x

    @abstractmethod
    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @abstractmethod
    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    @abstractmethod
    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute every block in the backward pass (less memory, one more forward per block)."""
        self.grad_checkpointing = enable

    @abstractmethod
    def no_weight_decay(self) -> set[str]:
        raise NotImplementedError

    @abstractmethod
    def layer_id(self, name: str) -> int:
        raise NotImplementedError

    @property
    @abstractmethod
    def num_layers(self) -> int:
        raise NotImplementedError


def _frames_of(x: torch.Tensor) -> int | str:
    return x.shape[2] if x.dim() == 5 else "T"


def new_classifier(num_features: int, num_classes: int, like: torch.Tensor | None = None) -> nn.Module:
    """A trunc_normal(0.02) Linear classifier (on ``like``'s device and dtype), or Identity for 0 classes."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    if num_classes == 0:
        return nn.Identity()
    kwargs: dict[str, Any] = {} if like is None else {"device": like.device, "dtype": like.dtype}
    head = nn.Linear(num_features, num_classes, **kwargs)
    nn.init.trunc_normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return head


@dataclass(frozen=True)
class CheckpointLayout:
    """Where one kind of checkpoint file keeps its weights (docs/checkpoints.md).

    ``weights_key``: the top-level key holding the state dict (None: the file is the state dict);
    ``prefix``: stripped from the keys that carry it; ``key_hint``: for flat layouts, a key prefix
    that tells this layout apart from other flat files; ``ema_key``: where the file keeps EMA weights.
    """

    name: str
    weights_key: str | None = None
    prefix: str = ""
    key_hint: str | None = None
    ema_key: str | None = None

    def holds(self, obj: Mapping[str, Any]) -> bool:
        """Whether a loaded file ``obj`` has this layout's container."""
        if self.weights_key is not None:
            return isinstance(obj.get(self.weights_key), dict)
        if not all(isinstance(value, torch.Tensor) for value in obj.values()):
            return False
        return self.key_hint is None or any(strip_prefixes(key, self.prefix).startswith(self.key_hint) for key in obj)

    def state_dict(self, obj: Mapping[str, Any], ema: bool = False) -> dict[str, torch.Tensor]:
        """The tensors of ``obj`` (its EMA weights with ``ema``), ``module.`` and the prefix removed."""
        key = self.ema_key if ema else self.weights_key
        state = obj if key is None else obj[key]
        return {strip_prefixes(key, self.prefix): value for key, value in state.items()
                if isinstance(value, torch.Tensor)}


def strip_prefixes(key: str, prefix: str = "") -> str:
    """``key`` without DataParallel's ``module.`` prefixes and without ``prefix``."""
    while key.startswith("module."):
        key = key[len("module."):]
    if prefix and key.startswith(prefix):
        key = key[len(prefix):]
    while key.startswith("module."):
        key = key[len("module."):]
    return key


@dataclass(frozen=True)
class ConfigKey:
    """A ``MODEL.*`` config key only this family has, and the ``create_model`` override it sets.

    ``unset`` is the value meaning "the variant's own" (the override is then not passed); ``resolve``
    may compute the override from the whole config (e.g. an image size of 0 = the training crop).
    """

    name: str
    default: Any
    override: str
    help: str
    unset: Any = None
    resolve: Callable[[Any, CfgNode], Any] | None = None

    def value(self, cfg: CfgNode) -> Any:
        """The override this key gives for ``cfg`` (``unset`` when the variant's own applies)."""
        value = cfg.MODEL[self.name]
        return self.resolve(value, cfg) if self.resolve is not None else value


def crop_size_unless_set(value: int, cfg: CfgNode) -> int:
    """An image-size config key's value, 0 meaning the training crop (DATA.TRAIN_CROP_SIZE)."""
    return value or cfg.DATA.TRAIN_CROP_SIZE


Arch = TypeVar("Arch", bound=ArchConfig)
StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TinyVariant:
    """A small model of a family for the shared tests: a registered name with architecture overrides, and
    the side of the square frames it takes (its clips run in well under a second on a CPU)."""

    name: str
    overrides: Mapping[str, Any]
    image_size: int


@dataclass(frozen=True)
class TransformersFormat:
    """How a family's models map onto one transformers model class (docs/checkpoints.md, "transformers").

    ``model_type`` / ``architecture``: the config.json values of that class; ``read_config(config)``: the
    registered model name, frame count and ``create_model`` overrides a config.json describes (ValueError
    naming the field it cannot represent); ``write_config(model)``: the config.json fields describing
    ``model`` (besides labels); ``export_state_dict(state)``: the model's state dict under the transformers
    key names (the other way is ``filter_state_dict``'s).
    """

    model_type: str
    architecture: str
    read_config: Callable[[Mapping[str, Any]], tuple[str, int, dict[str, Any]]]
    write_config: Callable[[VideoBackbone], dict[str, Any]]
    export_state_dict: Callable[[Mapping[str, torch.Tensor]], StateDict]


@dataclass(frozen=True)
class ModelFamily(Generic[Arch]):
    """One family as the rest of videovit sees it (docs/adding-a-backbone.md).

    ``build(arch, num_frames, num_classes)`` makes the model; ``variants`` maps registered model names
    to their architectures; ``tiny_variants`` are small models of the family that the shared tests
    build (tests/test_family_contract.py, tests/saved_models.py). Checkpoint hooks, each given a state
    dict already stripped of its layout:
    - ``can_load(state)``: whether this family's models can load these weights (its own, its official
      files', or foreign ones it maps, such as ImageNet ViT files); several families may say yes;
    - ``filter_state_dict(state, model)``: foreign key names and shapes -> the model's;
    - ``resize_weight(key, source, target)``: ``source`` interpolated to ``target``'s geometry, or None;
    - ``inflate_weight(key, target, state)``: the initial value of a model weight taken from an image
      checkpoint (a temporal layer copied from its host block, a 2-D kernel spread over time into a 3-D
      one), or None to keep the model's own initialisation; reported as "inflated";
    - ``video_only(key)``: whether ``key`` is a weight an image checkpoint cannot have (temporal layers,
      time embeddings), so that its absence is reported as "new" rather than "missing".
    ``transformers``: how the family's models map onto a transformers model class, or None.
    """

    name: str
    build: Callable[[Arch, int, int], VideoBackbone]
    variants: Mapping[str, Arch]
    can_load: Callable[[Mapping[str, torch.Tensor]], bool]
    video_only: Callable[[str], bool] = lambda key: False
    tiny_variants: tuple[TinyVariant, ...] = ()
    filter_state_dict: Callable[[Mapping[str, torch.Tensor], nn.Module], StateDict] = (
        lambda state, model: dict(state))
    resize_weight: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor | None] = (
        lambda key, source, target: None)
    inflate_weight: Callable[[str, torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor | None] = (
        lambda key, target, state: None)
    layouts: tuple[CheckpointLayout, ...] = ()
    config_keys: tuple[ConfigKey, ...] = ()
    classifier_prefixes: tuple[str, ...] = ("head.",)
    transformers: TransformersFormat | None = None

    def create(self, variant: str, num_frames: int, num_classes: int, overrides: Mapping[str, Any]) -> VideoBackbone:
        """Variant ``variant`` with ``overrides`` applied (unknown or invalid ones raise ValueError)."""
        return self.build(self.arch(variant, overrides), num_frames, num_classes)

    def arch(self, variant: str, overrides: Mapping[str, Any]) -> Arch:
        """The validated architecture of ``variant`` with ``overrides``, without building anything."""
        return self.variants[variant].with_overrides(overrides)  # type: ignore[return-value]

    def is_classifier(self, key: str) -> bool:
        """Whether ``key`` belongs to the classifier (re-initialised when the class count changes)."""
        return key.startswith(self.classifier_prefixes)
