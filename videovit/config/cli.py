"""Command-line side of the config: ``--cfg a.yaml [b.yaml ...]`` plus ``KEY VALUE`` overrides."""
from __future__ import annotations

import argparse
from pathlib import Path

from yacs.config import CfgNode

from videovit.config.loading import load_config
from videovit.errors import ConfigError
from videovit.files import writing

YAML_SUFFIXES = (".yaml", ".yml")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg``, ``--opts KEY VALUE ...`` and bare ``KEY VALUE`` overrides to ``parser``."""
    parser.add_argument("--cfg", nargs="+", default=[], metavar="FILE",
                        help="config files merged in order (later files win); bare KEY VALUE "
                             "pairs may follow them")
    parser.add_argument("overrides", nargs="*", metavar="KEY VALUE",
                        help="config overrides, e.g. TRAIN.BATCH_SIZE 16 SOLVER.BASE_LR 1e-4")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE",
                        help="config overrides (everything after --opts)")


def config_from_args(args: argparse.Namespace) -> CfgNode:
    """The validated, frozen config named by parsed ``args`` (see ``add_config_arguments``)."""
    return load_config(*config_sources(args))


def config_sources(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(config files, ``KEY VALUE`` overrides) of parsed ``args``, for work that loads the config again."""
    files, trailing = split_config_files(args.cfg)
    return files, trailing + list(args.overrides) + list(args.opts)


def split_config_files(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``--cfg`` swallows the bare overrides after the files: separate them again."""
    files: list[str] = []
    for i, token in enumerate(tokens):
        if not token.endswith(YAML_SUFFIXES):
            return files, tokens[i:]
        files.append(token)
    return files, []


def save_config(cfg: CfgNode, output_dir: str | Path) -> Path:
    """Write the merged config as ``output_dir/config.yaml`` (re-loadable with ``--cfg``); a write the storage
    refuses is a StorageError naming the file."""
    path = Path(output_dir) / "config.yaml"
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cfg.dump())
    return path


__all__ = ["ConfigError", "add_config_arguments", "config_from_args", "config_sources", "save_config",
           "split_config_files"]
