"""Merging YAML files and ``KEY VALUE`` overrides into the defaults, with helpful errors."""
from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from yacs.config import CfgNode

from videovit.config.defaults import family_keys_declared, get_defaults
from videovit.config.validation import validate_config
from videovit.errors import ConfigError

BASE_KEY = "_BASE_"
_EXPLICIT = "explicit_keys"
_UNDECLARED = "undeclared_keys"
# Spellings of a boolean YAML accepts (the saved config.yaml writes true/false), in any case.
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def load_config(cfg_files: Sequence[str | Path] = (), overrides: Sequence[str] = (),
                validate: bool = True) -> CfgNode:
    """Defaults, then each YAML file in order, then ``KEY VALUE`` overrides; validated and frozen.

    The keys the files and overrides set are remembered (``explicit_keys``).
    """
    cfg = get_defaults()
    explicit: set[str] = set()
    for path in cfg_files:
        explicit.update(merge_file(cfg, Path(path)))
    explicit.update(merge_overrides(cfg, overrides))
    return finish_config(cfg, explicit, validate)


def config_from_text(text: str, source: str, overrides: Sequence[str] = ()) -> CfgNode:
    """The config a saved ``config.yaml`` text describes (a checkpoint's), merged and checked like a file."""
    cfg = get_defaults()
    explicit = set(_merge_mapping(cfg, _parse_yaml(text, source), source))
    explicit.update(merge_overrides(cfg, overrides))
    return finish_config(cfg, explicit, validate=True)


def explicit_keys(cfg: CfgNode) -> frozenset[str]:
    """The dotted keys of ``cfg`` that its config files or overrides set (empty for a bare default)."""
    return cfg.__dict__.get(_EXPLICIT, frozenset())


def undeclared_keys(cfg: CfgNode) -> dict[str, str]:
    """MODEL.* keys set before the model families declared theirs: key -> where it was set."""
    return dict(cfg.__dict__.get(_UNDECLARED, {}))


def finish_config(cfg: CfgNode, explicit: set[str], validate: bool) -> CfgNode:
    """``cfg`` validated (with ``validate``), frozen, remembering the ``explicit`` keys its sources set."""
    if validate:
        validate_config(cfg)
    cfg.__dict__[_EXPLICIT] = frozenset(explicit)  # yacs keeps attributes out of the dumped keys
    cfg.freeze()
    return cfg


def merge_file(cfg: CfgNode, path: Path, _seen: tuple[Path, ...] = ()) -> list[str]:
    """Merge a YAML file (and the ``_BASE_`` file it names, first) into ``cfg``; returns the keys set."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"{path}: _BASE_ files include each other in a cycle: {list(_seen)}")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: check the --cfg path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not a YAML config file: not UTF-8 text ({err})") from None
    data = _parse_yaml(text, str(path))
    base = data.pop(BASE_KEY, None)
    keys = merge_file(cfg, path.parent / base, _seen + (path,)) if base else []
    return keys + _merge_mapping(cfg, data, str(path))


def _parse_yaml(text: str, source: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:  # one line naming the place; YAML's own multi-line report goes before it
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{source} is not valid YAML{where}: {problem}; fix its syntax",
                          details=str(err).splitlines()) from err
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of config sections, got {type(data).__name__}")
    return data


def _merge_mapping(cfg: CfgNode, data: dict, source: str) -> list[str]:
    keys = []
    for key, value in _flatten(data):
        set_value(cfg, key, value, source=source)
        keys.append(key)
    return keys


def merge_overrides(cfg: CfgNode, overrides: Sequence[str]) -> list[str]:
    """Apply ``KEY VALUE`` pairs given on the command line (values parsed as Python literals); returns
    the keys set."""
    if len(overrides) % 2:
        raise ConfigError(
            f"overrides must come as KEY VALUE pairs, got an odd list: {' '.join(overrides)}")
    for key, raw in zip(overrides[0::2], overrides[1::2], strict=True):
        set_value(cfg, key, raw, source="command line", parse=True)
    return list(overrides[0::2])


def all_keys(cfg: CfgNode, prefix: str = "") -> list[str]:
    """Every leaf key of ``cfg`` in dotted form."""
    keys = []
    for name, value in cfg.items():
        full = f"{prefix}{name}"
        keys.extend(all_keys(value, full + ".") if isinstance(value, CfgNode) else [full])
    return keys


def get_value(cfg: CfgNode, key: str) -> Any:
    """The value of dotted ``key`` in ``cfg`` (KeyError when it has none)."""
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def set_value(cfg: CfgNode, key: str, value: Any, source: str, parse: bool = False) -> None:
    """Set dotted ``key`` to ``value`` after checking that the key exists and the type fits.

    With ``parse``, ``value`` is command-line text: read as a Python literal unless the key holds a
    string (so ``OUTPUT_DIR 2024`` stays the text it was typed as).
    """
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, CfgNode) else None
        if not isinstance(node, CfgNode):
            break
    if not isinstance(node, CfgNode) or leaf not in node or isinstance(node[leaf], CfgNode):
        if _may_be_family_key(key):  # checked once the families declare their keys
            cfg.MODEL[leaf] = _parse_literal(value) if parse and isinstance(value, str) else value
            cfg.__dict__.setdefault(_UNDECLARED, {})[key] = source
            return
        raise ConfigError(_unknown_key_message(cfg, key, source))
    if parse and not isinstance(node[leaf], str):
        value = _parse_literal(value)
    node[leaf] = _coerce(key, node[leaf], value, source)


def _may_be_family_key(key: str) -> bool:
    parts = key.split(".")
    return not family_keys_declared() and len(parts) == 2 and parts[0] == "MODEL" and parts[1].isupper()


def _unknown_key_message(cfg: CfgNode, key: str, source: str) -> str:
    close = difflib.get_close_matches(key, all_keys(cfg), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return f"unknown config key {key!r} ({source}).{hint}"


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of the default, refusing conversions that lose meaning."""
    expected = type(default)
    if isinstance(value, tuple):
        value = list(value)
    if expected is bool and isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[value.lower()]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        if expected is list and default and value:
            item_type = type(default[0])
            return [_coerce(f"{key}[{i}]", default[0], v, source) if item_type in (int, float)
                    else v for i, v in enumerate(value)]
        return value
    raise ConfigError(
        f"{key} ({source}) expects {_type_name(expected)} like {default!r}, "
        f"got {value!r} ({_type_name(type(value))}); change the value to {_type_name(expected)}")


def _type_name(kind: type) -> str:
    return {bool: "a boolean (True/False, true/false)", int: "an integer", float: "a number",
            str: "a string", list: "a list"}.get(kind, kind.__name__)


def _parse_literal(raw: str) -> Any:
    """``'8'`` -> 8, ``'[1, 2]'`` -> [1, 2], ``'True'`` -> True; anything else stays a string."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _flatten(data: dict, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for name, value in data.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _flatten(value, full + ".")
        else:
            yield full, value
