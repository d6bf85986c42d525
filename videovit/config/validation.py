"""Value checks run before any work starts: every problem is reported at once, with the fix.

These are the checks that need nothing but the config. The layers above add theirs before a run
starts (the model's keys, checkpoint types, devices: ``videovit.engine.preflight``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from yacs.config import CfgNode

from videovit.errors import ConfigError

DECODING_BACKENDS = ("auto", "pyav", "torchcodec", "decord")


def validate_config(cfg: CfgNode) -> None:
    """Raise ``ConfigError`` listing every impossible or conflicting value in ``cfg``."""
    problems: list[str] = []
    for check in _CHECKS:
        check(cfg, problems.append)
    raise_problems(problems)


def raise_problems(problems: Sequence[str]) -> None:
    """A ``ConfigError`` naming every problem on one line, unless there is none."""
    if len(problems) == 1:
        raise ConfigError(f"invalid configuration: {problems[0]}")
    if problems:
        raise ConfigError(f"invalid configuration ({len(problems)} problems): {'; '.join(problems)}")


Report = Callable[[str], None]


def _at_least(report: Report, key: str, value: float, low: float) -> None:
    if value < low:
        report(f"{key} = {value!r} must be >= {low}")


def _within(report: Report, key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        report(f"{key} = {value!r} must be in [{low}, {high}]")


def _one_of(report: Report, key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        report(f"{key} = {value!r} must be one of {', '.join(map(repr, choices))}")


def _check_model(cfg: CfgNode, report: Report) -> None:
    """The keys every model has (the model's own are checked by ``videovit.models.model_problems``)."""
    m = cfg.MODEL
    _at_least(report, "MODEL.NUM_CLASSES", m.NUM_CLASSES, 1)
    _within(report, "MODEL.DROP_PATH_RATE", m.DROP_PATH_RATE, 0.0, 0.99)
    _within(report, "MODEL.DROPOUT_RATE", m.DROPOUT_RATE, 0.0, 0.99)


def _check_data(cfg: CfgNode, report: Report) -> None:
    d = cfg.DATA
    _one_of(report, "DATA.DATASET", d.DATASET, ("kinetics", "ssv2"))
    _at_least(report, "DATA.NUM_FRAMES", d.NUM_FRAMES, 1)
    _one_of(report, "DATA.SAMPLING", d.SAMPLING, ("uniform", "dense"))
    _at_least(report, "DATA.SAMPLING_RATE", d.SAMPLING_RATE, 1)
    if d.TARGET_FPS <= 0:
        report(f"DATA.TARGET_FPS = {d.TARGET_FPS} must be positive")
    if not d.PATH_LABEL_SEPARATOR:
        report("DATA.PATH_LABEL_SEPARATOR must not be empty (use ' ' or ',')")
    scales = d.TRAIN_JITTER_SCALES
    if len(scales) != 2 or scales[0] > scales[1] or scales[0] < 1:
        report(f"DATA.TRAIN_JITTER_SCALES = {scales} must be [min, max] with 1 <= min <= max")
    elif d.TRAIN_CROP_SIZE > scales[0]:
        report(f"DATA.TRAIN_CROP_SIZE = {d.TRAIN_CROP_SIZE} is larger than the smallest training "
               f"short side {scales[0]}: lower the crop or raise DATA.TRAIN_JITTER_SCALES")
    _at_least(report, "DATA.TRAIN_CROP_SIZE", d.TRAIN_CROP_SIZE, 1)
    _at_least(report, "DATA.TEST_CROP_SIZE", d.TEST_CROP_SIZE, 1)
    if d.TEST_CROP_SIZE > d.TEST_SCALE:
        report(f"DATA.TEST_CROP_SIZE = {d.TEST_CROP_SIZE} is larger than DATA.TEST_SCALE = "
               f"{d.TEST_SCALE}: the crop must fit in the resized frame")
    _one_of(report, "DATA.TEST_CROP_MODE", d.TEST_CROP_MODE, ("corners", "uniform"))
    if len(d.MEAN) != 3 or len(d.STD) != 3 or min(d.STD) <= 0:
        report(f"DATA.MEAN {d.MEAN} and DATA.STD {d.STD} need 3 values each, STD positive")
    _within(report, "DATA.RANDOM_ERASE_PROB", d.RANDOM_ERASE_PROB, 0.0, 1.0)
    _one_of(report, "DATA.DECODING_BACKEND", d.DECODING_BACKEND, DECODING_BACKENDS)
    _check_flip(cfg, report)
    _at_least(report, "DATA.MAX_DECODE_RETRIES", d.MAX_DECODE_RETRIES, 0)
    _at_least(report, "DATA.DECODE_TIMEOUT", d.DECODE_TIMEOUT, 0)
    _at_least(report, "DATA_LOADER.NUM_WORKERS", cfg.DATA_LOADER.NUM_WORKERS, 0)


def _check_flip(cfg: CfgNode, report: Report) -> None:
    """A flipped SSV2 clip of a left/right class shows the other class: flips need the swap file."""
    d = cfg.DATA
    if d.DATASET == "ssv2" and d.RANDOM_FLIP and not d.FLIP_CLASS_SWAP:
        report("DATA.RANDOM_FLIP True on SSV2 needs DATA.FLIP_CLASS_SWAP (the left/right class pairs, written by "
               "tools/build_data_lists.py ssv2 --flip-swap); set it, or set DATA.RANDOM_FLIP False")


def _check_train(cfg: CfgNode, report: Report) -> None:
    t, s = cfg.TRAIN, cfg.SOLVER
    if not t.ENABLE and not cfg.TEST.ENABLE:
        report("TRAIN.ENABLE and TEST.ENABLE are both False: nothing to run; enable one of them")
    _at_least(report, "TRAIN.BATCH_SIZE", t.BATCH_SIZE, 1)
    _at_least(report, "TRAIN.EPOCHS", t.EPOCHS, 1 if t.ENABLE else 0)
    _at_least(report, "TRAIN.ACCUM_STEPS", t.ACCUM_STEPS, 1)
    _at_least(report, "TRAIN.CHECKPOINT_PERIOD", t.CHECKPOINT_PERIOD, 1)
    _at_least(report, "TRAIN.CHECKPOINT_KEEP", t.CHECKPOINT_KEEP, 1)
    _at_least(report, "TRAIN.CHECKPOINT_EVERY_STEPS", t.CHECKPOINT_EVERY_STEPS, 0)
    _at_least(report, "TRAIN.EVAL_PERIOD", t.EVAL_PERIOD, 0)
    _at_least(report, "TRAIN.MAX_STEPS", t.MAX_STEPS, 0)
    _one_of(report, "TRAIN.NONFINITE_LOSS", t.NONFINITE_LOSS, ("stop", "skip"))
    if s.BASE_LR <= 0:
        report(f"SOLVER.BASE_LR = {s.BASE_LR} must be positive")
    _at_least(report, "SOLVER.BASE_BATCH_SIZE", s.BASE_BATCH_SIZE, 1)
    _one_of(report, "SOLVER.LR_SCALING", s.LR_SCALING, ("linear", "none"))
    _at_least(report, "SOLVER.MIN_LR", s.MIN_LR, 0)
    if s.MIN_LR > s.BASE_LR:
        report(f"SOLVER.MIN_LR = {s.MIN_LR} is above SOLVER.BASE_LR = {s.BASE_LR}")
    _at_least(report, "SOLVER.WARMUP_EPOCHS", s.WARMUP_EPOCHS, 0)
    if t.ENABLE and s.WARMUP_EPOCHS > t.EPOCHS:
        report(f"SOLVER.WARMUP_EPOCHS = {s.WARMUP_EPOCHS} exceeds TRAIN.EPOCHS = {t.EPOCHS}: "
               "shorten the warm-up or train longer")
    _at_least(report, "SOLVER.WARMUP_START_LR", s.WARMUP_START_LR, 0)
    _at_least(report, "SOLVER.WEIGHT_DECAY", s.WEIGHT_DECAY, 0)
    _at_least(report, "SOLVER.CLIP_GRAD", s.CLIP_GRAD, 0)
    if not 0 < s.LAYER_DECAY <= 1:
        report(f"SOLVER.LAYER_DECAY = {s.LAYER_DECAY} must be in (0, 1] (1 = off)")


def _check_regularisation(cfg: CfgNode, report: Report) -> None:
    mx = cfg.MIXUP
    _at_least(report, "MIXUP.ALPHA", mx.ALPHA, 0)
    _at_least(report, "MIXUP.CUTMIX_ALPHA", mx.CUTMIX_ALPHA, 0)
    _within(report, "MIXUP.PROB", mx.PROB, 0.0, 1.0)
    _within(report, "MIXUP.SWITCH_PROB", mx.SWITCH_PROB, 0.0, 1.0)
    _within(report, "MIXUP.LABEL_SMOOTHING", mx.LABEL_SMOOTHING, 0.0, 0.99)
    if mx.ENABLE and mx.ALPHA == 0 and mx.CUTMIX_ALPHA == 0:
        report("MIXUP.ENABLE is True but MIXUP.ALPHA and MIXUP.CUTMIX_ALPHA are 0: "
               "set an alpha or MIXUP.ENABLE False")
    if not 0 < cfg.MODEL_EMA.DECAY < 1:
        report(f"MODEL_EMA.DECAY = {cfg.MODEL_EMA.DECAY} must be in (0, 1)")
    _one_of(report, "AMP.DTYPE", cfg.AMP.DTYPE, ("bf16", "fp16"))


def _check_test_and_run(cfg: CfgNode, report: Report) -> None:
    t = cfg.TEST
    _at_least(report, "TEST.BATCH_SIZE", t.BATCH_SIZE, 1)
    _at_least(report, "TEST.NUM_TEMPORAL_VIEWS", t.NUM_TEMPORAL_VIEWS, 1)
    _one_of(report, "TEST.NUM_SPATIAL_CROPS", t.NUM_SPATIAL_CROPS, (1, 3))
    _one_of(report, "TEST.SPLIT", t.SPLIT, ("test", "val"))
    _within(report, "TEST.MAX_FAILED_SHARE", t.MAX_FAILED_SHARE, 0.0, 1.0)
    _at_least(report, "LOG_PERIOD", cfg.LOG_PERIOD, 1)
    _one_of(report, "DEVICE", cfg.DEVICE, ("auto", "cpu", "cuda"))
    _one_of(report, "DIST_BACKEND", cfg.DIST_BACKEND, ("auto", "nccl", "gloo"))
    device_problems(cfg, "DEVICE is cpu" if cfg.DEVICE == "cpu" else None, report)
    if not cfg.OUTPUT_DIR:
        report("OUTPUT_DIR must name a folder for checkpoints and logs")


def device_problems(cfg: CfgNode, cpu_reason: str | None, report: Report) -> None:
    """Settings that need a GPU while the run is on the CPU for ``cpu_reason`` (None: not on the CPU).

    Checked here for DEVICE cpu; ``videovit.runtime`` checks DEVICE auto/cuda once it can ask the GPU.
    """
    if cpu_reason is None:
        return
    if cfg.DIST_BACKEND == "nccl":
        report(f"DIST_BACKEND nccl needs GPUs but {cpu_reason}: use gloo or auto")
    if cfg.AMP.ENABLE and cfg.AMP.DTYPE == "fp16":
        report(f"AMP.DTYPE fp16 needs a GPU but {cpu_reason}: use AMP.DTYPE bf16 on CPU, or AMP.ENABLE False")


_CHECKS = (_check_model, _check_data, _check_train, _check_regularisation, _check_test_and_run)
