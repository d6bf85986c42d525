"""Config system: merging order, CLI forms, and the errors users see for bad keys and values."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from videovit.config import add_config_arguments, config_from_args, get_defaults, load_config, save_config
from videovit.config.loading import all_keys
from videovit.engine.preflight import check_run_config
from videovit.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIGS = sorted([*(REPO / "configs/K400").glob("*.yaml"), *(REPO / "configs/SSV2").glob("*.yaml")])


def parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_every_default_key_has_a_comment():
    source = (REPO / "videovit" / "config" / "defaults.py").read_text().splitlines()
    for number, line in enumerate(source):
        if line.startswith("_C.") and "CfgNode()" not in line:
            assert source[number - 1].lstrip().startswith("#"), f"no comment above: {line}"


@pytest.mark.parametrize("path", [p for p in SHIPPED_CONFIGS if not p.name.startswith("_")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load(path: Path):
    cfg = load_config([path])
    assert cfg.MODEL.NAME == path.stem
    assert cfg.MODEL.NUM_CLASSES == (174 if path.parent.name == "SSV2" else 400)
    assert cfg.TEST.NUM_SPATIAL_CROPS == 3 and cfg.DATA.RANDOM_FLIP is (path.parent.name != "SSV2")
    base = load_config([path.parent / "_base.yaml"])
    assert base.DATA.NUM_FRAMES == 8
    if "DATA" not in yaml.safe_load(path.read_text()):   # the dataset's protocol unless the model file sets its own
        assert (cfg.DATA, cfg.TEST) == (base.DATA, base.TEST)


def test_demo_configs_load():
    video = load_config([REPO / "configs/demo/synthetic_regionvit.yaml"])
    assert video.MODEL.NUM_CLASSES == 8 and video.DATA.RANDOM_FLIP is False
    assert video.TEST.NUM_SPATIAL_CROPS == 3 and video.MODEL.TIME_EMBED_INIT_STD == 0.5
    image = load_config([REPO / "configs/demo/synthetic_regionvit.yaml",
                         REPO / "configs/demo/synthetic_positions.yaml"])
    assert image.MODEL.NUM_CLASSES == 9 and image.DATA.NUM_FRAMES == 1 and not image.TEST.ENABLE
    assert image.MODEL.EMBED_DIMS == video.MODEL.EMBED_DIMS and image.OUTPUT_DIR != video.OUTPUT_DIR


def test_files_merge_in_order_and_base_files_come_first(tmp_path: Path):
    (tmp_path / "base.yaml").write_text("TRAIN:\n  BATCH_SIZE: 4\n  EPOCHS: 9\n")
    (tmp_path / "a.yaml").write_text("_BASE_: base.yaml\nTRAIN:\n  BATCH_SIZE: 5\n")
    (tmp_path / "b.yaml").write_text("TRAIN:\n  EPOCHS: 7\n")
    cfg = load_config([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert (cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.EPOCHS) == (5, 7)


def test_bare_pairs_and_opts_are_both_overrides(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("TRAIN:\n  BATCH_SIZE: 4\n")
    cfg = parse(["--cfg", str(tmp_path / "a.yaml"), "TRAIN.BATCH_SIZE", "16",
                 "SOLVER.WARMUP_EPOCHS", "0", "--opts", "DATA.MEAN", "[0, 0.5, 1]",
                 "OUTPUT_DIR", "2024"])
    assert cfg.TRAIN.BATCH_SIZE == 16
    assert cfg.SOLVER.WARMUP_EPOCHS == 0.0 and isinstance(cfg.SOLVER.WARMUP_EPOCHS, float)
    assert cfg.DATA.MEAN == [0.0, 0.5, 1.0]
    assert cfg.OUTPUT_DIR == "2024"
    assert parse(["TRAIN.EPOCHS", "6"]).TRAIN.EPOCHS == 6


def test_unknown_key_names_the_closest_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'TRAIN.BATCHSIZE'.*TRAIN.BATCH_SIZE"):
        load_config(overrides=["TRAIN.BATCHSIZE", "4"])
    with pytest.raises(ConfigError, match=r"DATA.NUM_FRAMES"):
        load_config(overrides=["DATA.NUM_FRAME", "4"])


def test_wrong_type_in_a_file_names_key_and_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  NAME: [1]\n")
    with pytest.raises(ConfigError, match=r"MODEL.NAME \(.*bad.yaml\) expects a string"):
        load_config([bad])


def test_unknown_key_in_a_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError, match=r"SOLVER.BASE_LRR.*bad.yaml.*SOLVER.BASE_LR"):
        load_config([bad])


@pytest.mark.parametrize("key,value,expect", [
    ("DATA.NUM_FRAMES", "abc", r"DATA.NUM_FRAMES.*expects an integer.*'abc'"),
    ("TRAIN.ENABLE", "1", r"TRAIN.ENABLE.*expects a boolean"),
    ("DATA.TRAIN_JITTER_SCALES", "[256, 320.5]", r"expects an integer"),
    ("DATA.MEAN", "abc", r"DATA.MEAN.*expects a list"),
])
def test_wrong_types_say_what_is_expected(key: str, value: str, expect: str):
    with pytest.raises(ConfigError, match=expect):
        load_config(overrides=[key, value])


@pytest.mark.parametrize("overrides,expect", [
    (["DATA.NUM_FRAMES", "-8"], r"DATA.NUM_FRAMES = -8 must be >= 1"),
    (["DATA.TEST_CROP_SIZE", "300"], r"TEST_CROP_SIZE = 300 is larger than DATA.TEST_SCALE"),
    (["DATA.TRAIN_CROP_SIZE", "300"], r"TRAIN_CROP_SIZE = 300 is larger than the smallest"),
    (["DATA.SAMPLING", "random"], r"DATA.SAMPLING = 'random' must be one of 'uniform', 'dense'"),
    (["TRAIN.ENABLE", "False", "TEST.ENABLE", "False"], r"nothing to run"),
    (["SOLVER.WARMUP_EPOCHS", "50", "TRAIN.EPOCHS", "10"], r"WARMUP_EPOCHS = 50.0 exceeds"),
    (["AMP.ENABLE", "True", "AMP.DTYPE", "fp16", "DEVICE", "cpu"], r"AMP.DTYPE fp16 needs a GPU but DEVICE is cpu"),
    (["TRAIN.MAX_STEPS", "-1"], r"TRAIN.MAX_STEPS = -1 must be >= 0"),
])
def test_impossible_values_fail_before_any_work(overrides: list[str], expect: str):
    with pytest.raises(ConfigError, match=expect):
        load_config(overrides=overrides)


def test_model_problems_fail_in_the_run_check_before_any_work():
    """A model's own keys are checked once the model families are loaded (at once when they are, as
    here; tests/test_layers.py checks the torch-free pass)."""
    with pytest.raises(ConfigError, match=r"unknown config key 'MODEL.WINDOWSIZE' \(command line\)\. Did you mean "
                                          r"MODEL.WINDOW_SIZE"):
        check_run_config(load_config(overrides=["MODEL.WINDOWSIZE", "7"]))
    with pytest.raises(ConfigError, match=r"unknown model 'regionvit_xl'.*Did you mean"):
        check_run_config(load_config(overrides=["MODEL.NAME", "regionvit_xl"]))
    with pytest.raises(ConfigError, match=r"MODEL.TIME_EMBED_INIT_STD \(regionvit_s\): time_embed_init_std must be "
                                          r">= 0, got -0.5"):
        check_run_config(load_config(overrides=["MODEL.TIME_EMBED_INIT_STD", "-0.5"]))


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError, match=r"2 problem") as info:
        load_config(overrides=["DATA.NUM_FRAMES", "0", "TRAIN.BATCH_SIZE", "0"])
    assert "DATA.NUM_FRAMES" in str(info.value) and "TRAIN.BATCH_SIZE" in str(info.value)


def test_odd_override_list_is_refused():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(overrides=["TRAIN.EPOCHS"])


def test_missing_file_and_base_cycle(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "nope.yaml"])
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config([tmp_path / "a.yaml"])


def test_saved_config_reloads_to_the_same_values(tmp_path: Path):
    cfg = load_config(overrides=["TRAIN.BATCH_SIZE", "3", "DATA.MEAN", "[0.1, 0.2, 0.3]"])
    path = save_config(cfg, tmp_path / "run")
    again = load_config([path])
    assert all_keys(again) == all_keys(get_defaults())
    assert again == cfg


@pytest.mark.parametrize("spelling,value", [("false", False), ("true", True), ("False", False), ("no", False),
                                            ("on", True)])
def test_booleans_accept_the_spellings_yaml_writes(spelling: str, value: bool, tmp_path: Path):
    assert load_config(overrides=["TEST.ENABLE", spelling]).TEST.ENABLE is value
    config_file = tmp_path / "spelt.yaml"
    config_file.write_text(f"TEST:\n  ENABLE: '{spelling}'\n")   # quoted: reaches the config as text
    assert load_config([config_file]).TEST.ENABLE is value
