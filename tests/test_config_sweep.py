"""Randomised sweep of bad overrides: every one fails early as a ConfigError naming its key."""
from __future__ import annotations

import random

import pytest

from videovit.config import get_defaults, load_config
from videovit.config.loading import all_keys
from videovit.engine.preflight import check_run_config
from videovit.errors import ConfigError

# Values that are invalid for the key whatever else is set.
INVALID = {
    "DATA.NUM_FRAMES": ["0", "-3", "'eight'", "2.5"],
    "DATA.TRAIN_CROP_SIZE": ["0", "-224", "1000"],
    "DATA.TEST_CROP_SIZE": ["0", "999"],
    "DATA.TRAIN_JITTER_SCALES": ["[320, 256]", "[256]", "[0, 0]", "'big'"],
    "DATA.SAMPLING": ["'random'", "3"],
    "DATA.DECODING_BACKEND": ["'ffmpeg'", "'torchvision'"],
    "DATA.MEAN": ["[0.5]", "0.5"],
    "DATA.STD": ["[0, 1, 1]", "[1, 1]"],
    "DATA.DATASET": ["'imagenet'"],
    "TRAIN.BATCH_SIZE": ["0", "-1", "1.5", "True"],
    "TRAIN.ACCUM_STEPS": ["0"],
    "TRAIN.CHECKPOINT_TYPE": ["'pickle'"],
    "TRAIN.NONFINITE_LOSS": ["'ignore'"],
    "TRAIN.CHECKPOINT_EVERY_STEPS": ["-1", "0.5"],
    "SOLVER.BASE_LR": ["0", "-0.1", "'fast'"],
    "SOLVER.LAYER_DECAY": ["0", "1.5"],
    "SOLVER.LR_SCALING": ["'sqrt'"],
    "MIXUP.PROB": ["1.5", "-0.1"],
    "MIXUP.LABEL_SMOOTHING": ["1.0"],
    "MODEL.NAME": ["'resnet50'", "'regionvit'", "5"],
    "MODEL.NUM_CLASSES": ["0"],
    "MODEL.DROP_PATH_RATE": ["1.5"],
    "MODEL.EMBED_DIMS": ["[64, 128]", "[0, 1, 2, 3]"],
    "MODEL.STEM": ["'2conv'"],
    "MODEL_EMA.DECAY": ["1.0", "0"],
    "AMP.DTYPE": ["'fp8'"],
    "TEST.NUM_SPATIAL_CROPS": ["2", "0"],
    "TEST.NUM_TEMPORAL_VIEWS": ["0"],
    "DEVICE": ["'tpu'"],
    "LOG_PERIOD": ["0"],
}


@pytest.mark.parametrize("seed", range(40))
def test_random_invalid_overrides_fail_with_a_config_error_naming_a_key(seed: int):
    rng = random.Random(seed)
    keys = rng.sample(sorted(INVALID), k=rng.randint(1, 4))
    overrides = [part for key in keys for part in (key, rng.choice(INVALID[key]))]
    with pytest.raises(ConfigError) as info:
        check_run_config(load_config(overrides=overrides))
    assert any(key in str(info.value) for key in keys), str(info.value)


@pytest.mark.parametrize("seed", range(20))
def test_random_text_on_random_keys_never_escapes_as_another_error(seed: int):
    """Whatever text lands on whatever key, the outcome is a valid config or a ConfigError."""
    rng = random.Random(1000 + seed)
    keys = all_keys(get_defaults())
    junk = ["-1", "0", "1e9", "''", "[]", "[1, 2, 3, 4]", "None", "{}", "nan", "True", "x y", "(", "'a'"]
    overrides = [part for _ in range(rng.randint(1, 5))
                 for part in (rng.choice(keys), rng.choice(junk))]
    try:
        load_config(overrides=overrides)
    except ConfigError:
        pass
