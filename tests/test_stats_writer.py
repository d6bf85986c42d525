"""StatsWriter.rewind: a resumed run forgets what it will replay, in stats.jsonl and TensorBoard."""
from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from videovit.engine.run_log import STATS_FILE, StatsWriter


def write_steps(writer: StatsWriter, steps: range) -> None:
    for step in steps:
        writer.write("train", {"loss": float(step)}, step)


def board_steps(folder: Path) -> list[int]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return [event.step for event in events.Scalars("train/loss")]


def test_rewind_keeps_one_record_per_step_and_drops_a_torn_line(tmp_path) -> None:
    first = StatsWriter(tmp_path, active=True, tensorboard=True)
    write_steps(first, range(1, 7))
    first.close()
    with (tmp_path / STATS_FILE).open("a") as stream:
        stream.write('{"kind": "train", "global_st')  # killed in the middle of a line

    resumed = StatsWriter(tmp_path, active=True, tensorboard=True)
    resumed.rewind(4)
    write_steps(resumed, range(5, 9))
    resumed.close()

    records = [json.loads(line) for line in (tmp_path / STATS_FILE).read_text().splitlines()]
    assert [record["global_step"] for record in records] == list(range(1, 9))
    assert board_steps(tmp_path / "tensorboard") == list(range(1, 9))


def test_rewind_on_other_ranks_touches_nothing(tmp_path) -> None:
    (tmp_path / STATS_FILE).write_text('{"kind": "train", "global_step": 9}\n')
    StatsWriter(tmp_path, active=False, tensorboard=True).rewind(1)
    assert (tmp_path / STATS_FILE).read_text() == '{"kind": "train", "global_step": 9}\n'
    assert not (tmp_path / "tensorboard").exists()
