"""MODEL.COMPILE: torch.compile with a fallback to eager mode and one warning when compiling fails."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from saved_models import tiny_config
from tiny_runs import LATEST, load_checkpoint, make_tiny_dataset, run_tiny

from videovit.config import load_config
from videovit.models import build_model
from videovit.runtime.compile import CompileWarning, compile_if_configured, compile_model, is_compiled


def _tiny(tmp_path: Path, extra: list[str] | None = None):
    cfg = tiny_config(tmp_path, "regionvit", extra)
    clip = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    return cfg, build_model(cfg).eval(), clip


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("this backend cannot compile anything")


@pytest.mark.parametrize("backend", ["no_such_backend", _failing_backend])
def test_a_model_that_cannot_be_compiled_runs_eagerly_after_one_warning(backend, tmp_path) -> None:
    _, model, clip = _tiny(tmp_path)
    with torch.no_grad():
        expected = model(clip)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compile_model(model, clip, backend=backend) is model
    compile_warnings = [w for w in caught if issubclass(w.category, CompileWarning)]
    assert len(compile_warnings) == 1 and "running in eager mode" in str(compile_warnings[0].message)
    assert not is_compiled(model)
    with torch.no_grad():
        assert torch.equal(model(clip), expected)


def test_model_compile_false_leaves_the_model_alone(tmp_path) -> None:
    cfg, model, _ = _tiny(tmp_path)
    assert not cfg.MODEL.COMPILE and compile_if_configured(model, cfg) is model and not is_compiled(model)


@pytest.mark.slow
def test_compiled_and_eager_logits_agree(tmp_path) -> None:
    cfg, model, clip = _tiny(tmp_path, ["MODEL.COMPILE", "True"])
    keys = list(model.state_dict())
    with torch.no_grad():
        expected = model(clip)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)     # compiling must succeed here
        compile_if_configured(model, cfg)
    assert is_compiled(model) and list(model.state_dict()) == keys    # checkpoints are unaffected
    with torch.no_grad():
        compiled = model(clip)
    assert torch.allclose(compiled, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_training_and_testing_run_compiled_with_unchanged_checkpoints(tmp_path, monkeypatch) -> None:
    """MODEL.COMPILE True through the engine: the Trainer and the test compile the model (Dynamo's graph
    capture with the aot_eager backend here, as inductor's code generation takes minutes on a CPU), and the
    checkpoint keeps the eager model's keys, so it resumes and loads anywhere."""
    compiled: list[str] = []
    real_compile = torch.compile

    def recording_compile(model, **options):
        compiled.append(type(model).__name__)
        return real_compile(model, **{**options, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", recording_compile)
    lists, videos = make_tiny_dataset(tmp_path / "data", {"train": 2, "val": 1, "test": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)  # compiling must succeed here
        metrics = run_tiny(lists, videos, tmp_path / "run", **{"MODEL.COMPILE": True, "TRAIN.EPOCHS": 1,
                                                               "TRAIN.EVAL_PERIOD": 0})
    assert compiled, "the engine never compiled the model"
    assert metrics is not None and metrics["videos_scored"] == 3
    saved = load_checkpoint(tmp_path / "run" / LATEST)["model"]
    assert list(saved) == list(build_model(load_config([tmp_path / "run" / "config.yaml"])).state_dict())
