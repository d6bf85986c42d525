"""MODEL.COMPILE: torch.compile with a fallback to eager mode and one warning when compiling fails.

The compiled runs here choose a backend without code generation (MODEL.COMPILE_BACKEND): "aot_eager"
(Dynamo's graph capture and AOTAutograd's tracing, what inductor receives) for the logits, "eager"
(Dynamo's capture alone) through the engine. Inductor itself takes minutes on a CPU: it is measured by
``tools/benchmark_deploy.py compile``, not here. One graph per test: every call has the batch size of
the compile example, as another size makes Dynamo capture the model again.
"""
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


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    """Dynamo remembers the input sizes it saw per code object, and every family shares ``forward``:
    without a reset, a test after another one's sizes would capture a dynamic-shape graph (minutes)."""
    torch._dynamo.reset()


def _tiny(tmp_path: Path, family: str = "regionvit", extra: list[str] | None = None):
    """(config, tiny model in eval mode, one clip: the batch size of compile_if_configured's example)."""
    cfg = tiny_config(tmp_path, family, extra)
    clip = torch.randn(1, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    return cfg, build_model(cfg).eval(), clip


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("this backend cannot compile anything")


@pytest.mark.parametrize("backend", ["no_such_backend", _failing_backend])
def test_a_model_that_cannot_be_compiled_runs_eagerly_after_one_warning(backend, tmp_path) -> None:
    _, model, clip = _tiny(tmp_path, "timesformer")  # the quickest family to capture
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
    cfg, model, clip = _tiny(tmp_path, extra=["MODEL.COMPILE", "True", "MODEL.COMPILE_BACKEND", "aot_eager"])
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
    """MODEL.COMPILE True through the engine: the Trainer compiles the model with the configured backend,
    training and the test run it compiled, and the checkpoint keeps the eager model's keys, so it resumes
    and loads anywhere."""
    backends: list[str] = []
    real_compile = torch.compile

    def recording_compile(model, **options):
        backends.append(options.get("backend"))
        return real_compile(model, **options)

    monkeypatch.setattr(torch, "compile", recording_compile)
    lists, videos = make_tiny_dataset(tmp_path / "data", {"train": 2, "val": 1, "test": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)  # compiling must succeed here
        metrics = run_tiny(lists, videos, tmp_path / "run", **{"MODEL.COMPILE": True, "MODEL.COMPILE_BACKEND":
                                                               "eager", "TRAIN.EPOCHS": 1, "TRAIN.EVAL_PERIOD": 0,
                                                               "TEST.BATCH_SIZE": 1})
    assert backends == ["eager"], "the engine compiles the model once, with MODEL.COMPILE_BACKEND"
    assert metrics is not None and metrics["videos_scored"] == 3
    saved = load_checkpoint(tmp_path / "run" / LATEST)["model"]
    assert list(saved) == list(build_model(load_config([tmp_path / "run" / "config.yaml"])).state_dict())
