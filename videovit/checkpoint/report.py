"""The load report: what happened to every weight when a checkpoint was loaded."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoadReport:
    """Keys grouped by outcome; ``format()`` is printed on every load."""

    source: str
    layout: str
    family: str
    loaded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def format(self, max_keys: int = 12) -> str:
        """A human-readable summary: counts per group and the keys of the small groups."""
        lines = [f"load report for {self.source} (layout {self.layout}, family {self.family})"]
        groups = [("loaded", self.loaded, "copied as they are"),
                  ("inflated", self.inflated, "initialised from image weights (temporal layers from their "
                                                "host block, 2-D kernels spread over time)"),
                  ("resized", self.resized, "interpolated to the model's geometry"),
                  ("new", self.new, "initialised by the model (classifier, temporal fc, time embedding)"),
                  ("missing", self.missing, "not in the checkpoint; left at random init"),
                  ("mismatched", self.mismatched, "shape differs; left at random init"),
                  ("unused", self.unused, "in the checkpoint but not in the model")]
        for name, keys, meaning in groups:
            lines.append(f"  {name:<10} {len(keys):>5}  {meaning}")
            if keys and name != "loaded":
                shown = ", ".join(keys[:max_keys])
                more = f", ... (+{len(keys) - max_keys})" if len(keys) > max_keys else ""
                lines.append(f"             {shown}{more}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)
