"""Trained models outside training: ``from_pretrained`` and the video-level classifier built on it.

``from_pretrained`` returns the model itself, an ``nn.Module`` in eval mode that carries its config,
class names and input protocol (``model.cfg``, ``model.class_names``, ``model.preprocessing``), like the
models of transformers and timm. ``VideoClassifier`` turns it into files -> labels by the model's
protocol, through the same pieces as the multi-view test: a dataset of the files (unlabelled, no list
file), the evaluation loader sharded over the processes of a torchrun job, and the one scorer
(``videovit.evaluation.views.score_videos``: softmax of every view, averaged per video). Long videos
are classified window by window through the same scorer. See docs/deployment.md.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from videovit.checkpoint import load_trained_model
from videovit.config import load_config
from videovit.data.datasets import VideoList, dataset_of
from videovit.data.decoding.stream import frame_times
from videovit.deploy.windows import WindowScore, plan_windows, window_batches
from videovit.engine.loaders import eval_loader
from videovit.errors import CheckpointError, DecodeError
from videovit.evaluation.views import TOP_K, VideoScores, score_videos, top_classes
from videovit.models import VideoBackbone
from videovit.runtime.compile import compile_if_configured
from videovit.runtime.distributed import DistContext, resolve_device
from videovit.runtime.precision import autocast_factory


def from_pretrained(path: str | Path, cfg_files: Sequence[str | Path] = (), overrides: Sequence[str] = (),
                    log: Callable[[str], None] | None = None) -> VideoBackbone:
    """The trained model of a videovit training checkpoint or a model folder written by tools/export.py,
    in eval mode on the config's DEVICE, carrying ``cfg``, ``class_names`` and ``preprocessing``.

    The config is the one saved with the model unless ``cfg_files`` are given; ``overrides`` (``KEY
    VALUE`` pairs) apply on top either way, and the checkpoint decides what neither sets (docs/checkpoints.md,
    "Trained checkpoints"). ``log`` receives the loading messages.
    """
    cfg = load_config(cfg_files, overrides) if cfg_files else None
    model = load_trained_model(path, cfg, overrides, log=log).model
    if model.class_names is None:
        raise CheckpointError(f"{path} does not record its class names, so predictions could not be named; "
                              "use a checkpoint_*.pyth file written by tools/run_net.py or an exported folder")
    return model.to(resolve_device(model.trained_parts()[0].DEVICE)).eval()


@dataclass(frozen=True)
class Predictions:
    """Per-video probabilities of ``paths`` (NaN rows, and a reason in ``scores.failed``, for the failed)."""

    paths: list[str]
    scores: VideoScores

    @property
    def num_predicted(self) -> int:
        """Videos whose every view was scored."""
        return int(self.scores.scored.sum())


class VideoClassifier:
    """Video files -> class names with a model from ``from_pretrained``, by its protocol (every view's
    softmax, averaged per video). ``ctx``: this process's place in a torchrun job (default: one process
    on the model's device); each process then scores its share of the files and gets every result.
    MODEL.COMPILE True runs the model through torch.compile, as in the test."""

    def __init__(self, model: VideoBackbone, ctx: DistContext | None = None) -> None:
        self.cfg, self.class_names, self.preprocessing = model.trained_parts()
        device = next(model.parameters()).device
        self.ctx = ctx if ctx is not None else DistContext(0, 1, 0, device, None)
        self.model = compile_if_configured(model.to(self.ctx.device).eval(), self.cfg)
        self.autocast = autocast_factory(self.cfg, self.ctx.device)

    def predict(self, paths: Sequence[str | Path]) -> Predictions:
        """Class probabilities of every file of ``paths``; a file that cannot be decoded is listed as
        failed (never replaced)."""
        dataset = dataset_of(self.cfg, VideoList.of_paths(paths, self.class_names), "test")
        scores = score_videos(self.model, eval_loader(self.cfg, dataset, self.ctx), self.ctx, self.autocast,
                              dataset.num_videos, dataset.views_per_video, len(self.class_names))
        return Predictions([str(path) for path in paths], scores)

    def classify(self, path: str | Path, top_k: int = TOP_K) -> list[tuple[str, float]]:
        """The ``top_k`` most probable classes of one video as ``(name, probability)``, best first;
        DecodeError when it cannot be decoded."""
        scores = self.predict([path]).scores
        if not scores.scored[0]:
            raise DecodeError(path, scores.failed[0])
        return top_classes(scores.probs[0], self.class_names, top_k)

    def windows(self, path: str | Path, window: float, stride: float,
                progress: Callable[[int, int], None] | None = None) -> list[WindowScore]:
        """Probabilities of every window of ``window`` seconds, every ``stride`` seconds, of the video at
        ``path``, each window scored as a video of its own (docs/deployment.md, "Long videos");
        ``progress(done, total)`` after each window. Every process of a torchrun job scores every window."""
        times = frame_times(path)
        planned = plan_windows(times, window, stride)
        scores = score_videos(self.model, window_batches(self.cfg, path, times, planned, progress), self.ctx,
                              self.autocast, len(planned), self.preprocessing.views_per_video, len(self.class_names))
        return [WindowScore(window, scores.probs[index]) for index, window in enumerate(planned)]


__all__ = ["Predictions", "VideoClassifier", "from_pretrained"]
