"""The layers of the package (docs/architecture.md): every import points down the one order, no import
closes a circle, and the bottom layers start without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "videovit"

# Room -> its place in the one import order: a module may import its own room and the rooms of lower
# places; rooms sharing a place never import each other. ``videovit/__init__.py`` sits above them all.
LAYERS = {
    "base": 0,  # errors.py, signals.py, workers.py, cli.py, lazy.py, files.py
    "config": 1,
    "models": 2,
    "checkpoint": 3,
    "data": 4,
    "prep": 5,
    "runtime": 6,
    "evaluation": 7,
    "engine": 8,
    "deploy": 9, "viz": 9, "recipes": 9,
    "bench": 10,  # measures everything below it, deployment paths included
}
BASE_MODULES = ("errors", "signals", "workers", "cli", "lazy", "files")
TOP = "package"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return TOP
    return "base" if parts[1] in BASE_MODULES else parts[1]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every videovit module ``path`` imports (at module level or inside a function), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == "videovit" or name.startswith("videovit.")]


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_a_known_room() -> None:
    unknown = sorted({room_of(name) for name in all_modules()} - set(LAYERS) - {TOP})
    assert not unknown, f"rooms without a place in LAYERS (and docs/architecture.md): {unknown}"


def test_imports_point_down_the_layers() -> None:
    modules = all_modules()
    wrong = []
    for name, path in modules.items():
        room = room_of(name)
        if room == TOP:
            continue
        for line, imported in imports_of(path):
            if imported not in modules:
                continue  # a name imported from a module, checked through the module itself
            target = room_of(imported)
            if target == room:
                continue
            if target == TOP or LAYERS[target] >= LAYERS[room]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {room} imports {imported} ({target})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_closes_a_circle() -> None:
    modules = all_modules()
    graph = {name: sorted({imported for _, imported in imports_of(path) if imported in modules and imported != name
                           and not name.startswith(imported + ".")})
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("statement", [
    "import videovit",
    "import videovit.config, videovit.cli, videovit.data.lists, videovit.data.decoding",
    "from videovit.config import load_config; cfg = load_config(overrides=['MODEL.WINDOW_SIZE', '7'])",
])
def test_the_bottom_layers_start_without_torch(statement: str) -> None:
    """``import videovit`` is lazy and the config does not import the models, so a tool's ``--help`` or
    config mistake costs no torch start-up (docs/architecture.md, "Start-up")."""
    code = f"{statement}\nimport sys\nprint(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_family_key_given_before_the_models_load_is_typed_or_refused_once_they_do(monkeypatch) -> None:
    """In this process the models are loaded: their keys are taken away, as in a process that has only
    imported the config (the test above shows that such a process has no torch)."""
    from videovit.config import defaults, load_config
    from videovit.config.loading import explicit_keys, undeclared_keys
    from videovit.errors import ConfigError
    from videovit.models import complete_config

    with monkeypatch.context() as before_the_models:
        before_the_models.setattr(defaults, "_family_keys", None)
        misspelt = load_config(overrides=["MODEL.WINDOW_SIZE", "7", "MODEL.WINDOWSIZE", "7"])
        given = load_config(overrides=["MODEL.WINDOW_SIZE", "7"])
    assert undeclared_keys(given) == {"MODEL.WINDOW_SIZE": "command line"}, "kept as given, for later"
    with pytest.raises(ConfigError, match=r"unknown config key 'MODEL.WINDOWSIZE' \(command line\)\. "
                                          r"Did you mean MODEL.WINDOW_SIZE"):
        complete_config(misspelt)
    cfg = complete_config(given)
    assert cfg.MODEL.WINDOW_SIZE == 7 and isinstance(cfg.MODEL.WINDOW_SIZE, int)
    assert "MODEL.WINDOW_SIZE" in explicit_keys(cfg)
