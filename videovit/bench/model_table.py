"""The README's model table, generated from the configs so that it cannot drift from the code."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from videovit.bench.flops import count_parameters, measure_flops
from videovit.config import load_config
from videovit.errors import UsageError
from videovit.models import build_model

START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"


@dataclass(frozen=True)
class ModelRow:
    """One configured model: its name, input clip and cost."""

    config: str
    model: str
    clip: str
    params: int
    gflops: float


def measure_config(path: str | Path) -> ModelRow:
    """Params and GFLOPs without LayerNorm of the model of config ``path`` on one test clip."""
    cfg = load_config([path])
    model = build_model(cfg)
    shape = (1, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    flops = measure_flops(model, torch.randn(shape)).total(with_layernorm=False)
    return ModelRow(str(path), cfg.MODEL.NAME, "x".join(map(str, shape[2:])),
                    count_parameters(model), flops / 1e9)


def render_table(rows: Sequence[ModelRow]) -> str:
    """A markdown table of ``rows``."""
    lines = ["| config | model | clip (TxHxW) | params | GFLOPs (w/o LayerNorm) |",
             "|---|---|---|---:|---:|"]
    lines += [f"| `{r.config}` | {r.model} | {r.clip} | {r.params:,} | {r.gflops:.1f} |" for r in rows]
    return "\n".join(lines)


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between the model-table markers replaced by ``table``."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise UsageError(f"no {START} ... {END} markers found: add them where the table goes")
    return pattern.sub(lambda _: f"{START}\n{table}\n{END}", text)


def read_table(text: str) -> dict[str, int]:
    """Config path -> params, as written in the table of ``text`` (for checking it is current)."""
    body = text.split(START, 1)[1].split(END, 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| [^|]+ \| ([\d,]+) \|", body, re.MULTILINE)
    return {config: int(params.replace(",", "")) for config, params in rows}
