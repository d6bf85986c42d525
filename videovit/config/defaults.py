"""Every configuration key with its default; each key carries a one-line comment.

Batch sizes are **per process**; the learning rate given in SOLVER.BASE_LR is for a global batch of
SOLVER.BASE_BATCH_SIZE clips and is scaled linearly with the real global batch
(TRAIN.BATCH_SIZE x processes x TRAIN.ACCUM_STEPS) when SOLVER.LR_SCALING is "linear".
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from yacs.config import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------- model
_C.MODEL = CfgNode()
# Registered model name: regionvit_{ti,s,m,b}[_plus], volo_d{1..5}, timesformer_b, videomae_{s,b,l}
# (videovit.list_models()). Keys only some families have (e.g. MODEL.WINDOW_SIZE, or MODEL.TEMPORAL and
# MODEL.TIME_EMBED_INIT_STD of the families that insert temporal layers) are declared by their modules.
_C.MODEL.NAME = "regionvit_s"
# Number of output classes (400 for Kinetics-400, 174 for Something-Something V2).
_C.MODEL.NUM_CLASSES = 400
# Stochastic depth rate at the last block (linear from 0 over the blocks).
_C.MODEL.DROP_PATH_RATE = 0.1
# Dropout before the classifier.
_C.MODEL.DROPOUT_RATE = 0.0
# Architecture override: channel widths per stage ([] = the variant's own).
_C.MODEL.EMBED_DIMS = []
# Architecture override: blocks per stage ([] = the variant's own).
_C.MODEL.DEPTHS = []
# Architecture override: attention heads per stage ([] = the variant's own).
_C.MODEL.NUM_HEADS = []
# Recompute block activations in the backward pass to save memory (activation checkpointing).
_C.MODEL.ACT_CHECKPOINT = False
# Run the model through torch.compile (videovit/runtime/compile.py): falls back to eager mode with one
# warning where compilation fails. Compiling takes tens of seconds before the first step.
_C.MODEL.COMPILE = False
# torch.compile's backend for MODEL.COMPILE: "inductor" generates fused code (minutes on a CPU);
# "aot_eager" and "eager" only capture the graph and run it eagerly (a quick check that the model compiles).
_C.MODEL.COMPILE_BACKEND = "inductor"

# ---------------------------------------------------------------------------- data
_C.DATA = CfgNode()
# Dataset kind: "kinetics" (Kinetics-400 and alike) or "ssv2" (Something-Something V2).
_C.DATA.DATASET = "kinetics"
# Folder holding the list files train.csv, val.csv, test.csv and classes.txt.
_C.DATA.PATH_TO_DATA_DIR = "data_lists/k400"
# Prefix joined to every video path of the list files (their paths are relative to it).
_C.DATA.PATH_PREFIX = ""
# Separator between path and label on a list line.
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Frames per clip (T).
_C.DATA.NUM_FRAMES = 8
# Temporal sampling: "uniform" (TSN segments over the whole video) or "dense" (T frames at a stride).
_C.DATA.SAMPLING = "uniform"
# Dense sampling: stride between sampled frames, in frames at DATA.TARGET_FPS.
_C.DATA.SAMPLING_RATE = 8
# Dense sampling: frame rate the stride refers to (videos at other rates are resampled in time).
_C.DATA.TARGET_FPS = 30
# Training: short side resized to a random value in this [min, max] range.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Training: side of the square random crop.
_C.DATA.TRAIN_CROP_SIZE = 224
# Testing: short side before the spatial crops.
_C.DATA.TEST_SCALE = 256
# Testing: side of each square crop.
_C.DATA.TEST_CROP_SIZE = 224
# Testing crops: "corners" (top-left, centre, bottom-right; the paper) or "uniform" (PySlowFast).
_C.DATA.TEST_CROP_MODE = "corners"
# Per-channel mean used to normalise RGB values in [0, 1] (ImageNet's).
_C.DATA.MEAN = [0.485, 0.456, 0.406]
# Per-channel std used to normalise RGB values in [0, 1] (ImageNet's).
_C.DATA.STD = [0.229, 0.224, 0.225]
# Training: random horizontal flip (on SSV2 an error unless DATA.FLIP_CLASS_SWAP is given).
_C.DATA.RANDOM_FLIP = True
# Optional file of "class_a class_b" index pairs swapped when a clip is flipped (SSV2 directions).
_C.DATA.FLIP_CLASS_SWAP = ""
# Training: timm RandAugment spec applied identically to all frames ("" = off), e.g. rand-m7-n4-mstd0.5.
_C.DATA.RAND_AUGMENT = ""
# Training: probability of random erasing, one box shared by all frames (0 = off).
_C.DATA.RANDOM_ERASE_PROB = 0.0
# Video decoder: "pyav", "decord" (refuses formats it reads inexactly) or "auto" (the fastest exact one).
_C.DATA.DECODING_BACKEND = "auto"
# Where torchcodec decodes ("torchcodec" and "auto" backends): "cpu", or "cuda" for its GPU decoder (NVDEC) where it
# works, with the same exactness checks; elsewhere CPU decoding, after one warning (docs/performance.md).
_C.DATA.DECODE_DEVICE = "cpu"
# Training: attempts to replace a video that fails to decode with another sample before giving up.
_C.DATA.MAX_DECODE_RETRIES = 10
# Seconds after which one video's decode is abandoned and counted as a failure (0 = no limit).
_C.DATA.DECODE_TIMEOUT = 60.0

# ---------------------------------------------------------------------------- data loader
_C.DATA_LOADER = CfgNode()
# Worker processes per training process.
_C.DATA_LOADER.NUM_WORKERS = 4
# Pin host memory for faster host-to-GPU copies.
_C.DATA_LOADER.PIN_MEMORY = True

# ---------------------------------------------------------------------------- training
_C.TRAIN = CfgNode()
# Run training.
_C.TRAIN.ENABLE = True
# Clips per process per step (global batch = this x processes x TRAIN.ACCUM_STEPS).
_C.TRAIN.BATCH_SIZE = 8
# Number of training epochs.
_C.TRAIN.EPOCHS = 30
# Optimiser steps accumulate gradients over this many batches.
_C.TRAIN.ACCUM_STEPS = 1
# Save a checkpoint every this many epochs (the latest is always kept).
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Keep the last this many periodic checkpoints (older ones are deleted).
_C.TRAIN.CHECKPOINT_KEEP = 3
# Also rewrite the latest checkpoint every this many optimiser steps, resumable mid-epoch (0 = off).
_C.TRAIN.CHECKPOINT_EVERY_STEPS = 0
# Run clip-level validation every this many epochs (0 = never).
_C.TRAIN.EVAL_PERIOD = 1
# Initial weights: an IN1K image checkpoint or a video checkpoint ("" = random init).
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# Layout of TRAIN.CHECKPOINT_FILE_PATH: auto, videovit, timm (any flat state dict), or a family's own
# (regionvit_official, volo_official, volo_train, timesformer_official, deit, ...; docs/checkpoints.md).
_C.TRAIN.CHECKPOINT_TYPE = "auto"
# Allow loading a checkpoint that lacks or mismatches non-classifier weights (they stay random).
_C.TRAIN.ALLOW_PARTIAL_LOAD = False
# Allow unpickling arbitrary Python objects from a checkpoint: only for files you trust.
_C.TRAIN.TRUST_CHECKPOINT = False
# Resume from the newest checkpoint in OUTPUT_DIR when there is one.
_C.TRAIN.AUTO_RESUME = True
# On a non-finite loss: "stop" (with a report) or "skip" (drop the step and count it).
_C.TRAIN.NONFINITE_LOSS = "stop"
# Stop training after this many optimiser steps in all (a checkpoint is saved there; 0 = no cap): for
# smoke tests. It does not change the learning-rate plan, so a later run without it continues exactly.
_C.TRAIN.MAX_STEPS = 0

# ---------------------------------------------------------------------------- optimisation
_C.SOLVER = CfgNode()
# Optimiser name understood by timm's create_optimizer_v2 (adamw, sgd, lamb, ...).
_C.SOLVER.OPTIMIZER = "adamw"
# Learning rate for a global batch of SOLVER.BASE_BATCH_SIZE clips.
_C.SOLVER.BASE_LR = 2e-4
# Global batch size SOLVER.BASE_LR refers to.
_C.SOLVER.BASE_BATCH_SIZE = 64
# How the learning rate follows the real global batch: "linear" or "none".
_C.SOLVER.LR_SCALING = "linear"
# Final learning rate of the cosine schedule.
_C.SOLVER.MIN_LR = 1e-6
# Linear warm-up length in epochs.
_C.SOLVER.WARMUP_EPOCHS = 5.0
# Learning rate at the start of warm-up.
_C.SOLVER.WARMUP_START_LR = 1e-6
# Weight decay (not applied to norms, biases, embeddings and position tables).
_C.SOLVER.WEIGHT_DECAY = 1e-4
# Clip the gradient norm to this value (0 = no clipping).
_C.SOLVER.CLIP_GRAD = 1.0
# Layer-wise learning-rate decay factor (1.0 = off).
_C.SOLVER.LAYER_DECAY = 1.0

# ---------------------------------------------------------------------------- regularisation
_C.MIXUP = CfgNode()
# Apply Mixup/CutMix to training clips (one box per clip shared by all frames).
_C.MIXUP.ENABLE = True
# Mixup alpha (0 = off).
_C.MIXUP.ALPHA = 0.8
# CutMix alpha (0 = off).
_C.MIXUP.CUTMIX_ALPHA = 1.0
# Probability of applying Mixup or CutMix to a batch.
_C.MIXUP.PROB = 1.0
# Probability of CutMix instead of Mixup when both are on.
_C.MIXUP.SWITCH_PROB = 0.5
# Label smoothing of the targets.
_C.MIXUP.LABEL_SMOOTHING = 0.1

# ---------------------------------------------------------------------------- EMA, AMP
_C.MODEL_EMA = CfgNode()
# Keep an exponential moving average of the weights.
_C.MODEL_EMA.ENABLE = False
# EMA decay per optimiser step.
_C.MODEL_EMA.DECAY = 0.9998

_C.AMP = CfgNode()
# Mixed precision (autocast) for training and testing.
_C.AMP.ENABLE = False
# Autocast dtype: "bf16" (CPU and recent GPUs) or "fp16" (with a gradient scaler).
_C.AMP.DTYPE = "bf16"
# Autocast on CPU runs too. False: AMP is the GPU precision only and a CPU run stays fp32 (the K400/SSV2
# configs: bf16 on GPUs, while a CPU without bf16 units would run bf16 slower than fp32).
_C.AMP.CPU = True

# ---------------------------------------------------------------------------- testing
_C.TEST = CfgNode()
# Run the multi-view test after training (or alone when TRAIN.ENABLE is False).
_C.TEST.ENABLE = True
# Views per process per forward pass.
_C.TEST.BATCH_SIZE = 8
# Temporal views per video (N).
_C.TEST.NUM_TEMPORAL_VIEWS = 1
# Spatial crops per temporal view (C: 1 = centre, 3 = DATA.TEST_CROP_MODE).
_C.TEST.NUM_SPATIAL_CROPS = 3
# Weights to test ("" = the trained model of this run, or the newest checkpoint in OUTPUT_DIR).
_C.TEST.CHECKPOINT_FILE_PATH = ""
# List split the test reads: "test" or "val".
_C.TEST.SPLIT = "test"
# Test and tools/predict.py exit 1 (after writing their results) when more than this share of the videos fail.
_C.TEST.MAX_FAILED_SHARE = 0.05

# ---------------------------------------------------------------------------- run
# Folder for checkpoints, logs, the merged config and predictions.
_C.OUTPUT_DIR = "output"
# Seed of every random generator.
_C.RNG_SEED = 0
# Log training stats every this many steps.
_C.LOG_PERIOD = 10
# Device: "auto" (CUDA when available), "cuda" or "cpu".
_C.DEVICE = "auto"
# Distributed backend: "auto" (nccl on CUDA, gloo on CPU), "nccl" or "gloo".
_C.DIST_BACKEND = "auto"
# Deterministic algorithms and seeded workers (slower; for exact reproduction).
_C.DETERMINISTIC = False
# Write TensorBoard scalars to OUTPUT_DIR/tensorboard.
_C.TENSORBOARD = True


# The MODEL.* keys that only some model families have are declared by ``videovit.models`` when it is
# imported (this package does not import the models: it stays free of torch, so that a config mistake is
# reported at once). Until then, unknown MODEL.* keys are kept as given and checked later
# (``videovit.models.complete_config``); see docs/architecture.md.
_family_keys: Callable[[], Iterable[tuple[str, Any]]] | None = None


def declare_family_keys(provider: Callable[[], Iterable[tuple[str, Any]]]) -> None:
    """Make ``provider() -> (name, default) pairs`` the source of the families' own MODEL.* keys."""
    global _family_keys
    _family_keys = provider


def family_keys_declared() -> bool:
    """Whether the model families' own MODEL.* keys are known (``videovit.models`` is imported)."""
    return _family_keys is not None


def get_defaults() -> CfgNode:
    """A fresh, mutable copy of the defaults, with every model family's own MODEL.* keys once known."""
    cfg = _C.clone()
    for name, default in _family_keys() if _family_keys is not None else ():
        cfg.MODEL[name] = default
    return cfg
