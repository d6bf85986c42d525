"""The README's model table is generated; these checks keep it in step with the code."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from videovit.bench.flops import count_parameters
from videovit.bench.model_table import ModelRow, read_table, render_table, replace_table
from videovit.config import load_config
from videovit.models import build_model

REPO = Path(__file__).resolve().parents[1]
README_ROWS = read_table((REPO / "README.md").read_text())


def test_readme_lists_every_k400_model_config():
    configs = {f"configs/K400/{p.name}" for p in (REPO / "configs/K400").glob("[!_]*.yaml")}
    assert set(README_ROWS) == configs


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("config", sorted(README_ROWS))
def test_readme_parameter_counts_match_the_models(config: str):
    with torch.device("meta"):
        model = build_model(load_config([REPO / config]))
    assert count_parameters(model) == README_ROWS[config]


def test_table_round_trips_through_the_markers():
    row = ModelRow("configs/K400/x.yaml", "x", "8x224x224", 1234567, 12.34)
    text = replace_table("intro\n<!-- model-table:start -->\nold\n<!-- model-table:end -->\nend",
                         render_table([row]))
    assert "old" not in text and text.startswith("intro") and text.endswith("end")
    assert read_table(text) == {"configs/K400/x.yaml": 1234567}
    with pytest.raises(ValueError, match="markers"):
        replace_table("no markers here", "table")
