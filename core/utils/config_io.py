"""Typed dataclass configs to and from plain dicts, TOML/JSON/YAML files and command-line overrides.

One config object describes a whole run; it is stored in the run folder and in every checkpoint
as a plain dict (so ``torch.load(weights_only=True)`` can read it back). Overrides use dotted
keys (``train.epochs=10``, ``model.hidden_dims=[256,256]``) whose values are parsed as JSON where
they can be, else kept as strings.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from core.utils.errors import ConfigError

__all__ = [
    "to_dict",
    "from_dict",
    "load_config_file",
    "apply_overrides",
    "parse_override",
    "field_default",
    "arg_default",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) dataclass; tuples become lists."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` (dataclass, tuple, Optional, Path, scalars)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(typing.get_args(tp), value, where)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # an annotation is a class, never an instance
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of settings, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        return _coerce_sequence(origin, typing.get_args(tp), value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    scalar = _SCALARS.get(tp)
    return scalar(value, where) if scalar is not None else value


def _coerce_union(args: tuple[Any, ...], value: Any, where: str) -> Any:
    """The first member of ``Optional[...]`` / ``A | B`` that reads ``value``; None where None is allowed."""
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(arg, value, where)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if errors else f"{where}: cannot read {value!r}")


def _coerce_sequence(origin: Any, args: tuple[Any, ...], value: Any, where: str) -> list[Any] | tuple[Any, ...]:
    """A list or tuple setting, each item converted to the annotated item type."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    item = args[0] if args else Any
    items = [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # --set model.colour=0 parses as the number 0
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _coerce_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value  # exact, also beyond float precision
    try:
        as_float = float(value)
        whole = int(as_float)  # NaN -> ValueError, infinity -> OverflowError
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: expected an integer, got {value!r}") from exc
    if as_float != whole:
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return whole


def _coerce_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: expected a number, got {value!r}") from exc


def _coerce_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    Path: lambda value, where: Path(value),
    bool: _coerce_bool,
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
}


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are an error (they are usually typos)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML file into a dict (YAML needs PyYAML installed)."""
    path = Path(path)
    data = _read_config_file(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the file holds a {type(data).__name__}, not a table of settings "
            "(e.g. [model] and [train] sections)."
        )
    return data


def _read_config_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc}).") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise ConfigError(f"{path}: YAML configs need PyYAML (pip install pyyaml), or use TOML/JSON.") from exc
            data = yaml.safe_load(text)
            return data or {}
    except ConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"{path}: not a valid {suffix[1:].upper()} file: {exc}") from exc
    raise ConfigError(f"{path}: unknown config format {suffix!r}; use .toml, .json or .yaml.")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=10"`` -> (["train", "epochs"], 10)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.epochs=10")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return [k for k in key.strip().split(".") if k], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``KEY=VALUE`` overrides applied."""
    result = json.loads(json.dumps(data, default=str))
    for text in overrides:
        keys, value = parse_override(text)
        if not keys:
            raise ConfigError(f"override {text!r}: empty key")
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key} is not a table")
        node[keys[-1]] = value
    return result


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (a ``default_factory`` is called).

    The one source of a setting's default: command-line options take theirs from here instead of
    repeating the number in argparse, so the CLI and the dataclass cannot drift apart.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise ConfigError(f"{cls.__name__}.{name} has no default")
    known = sorted(f.name for f in dataclasses.fields(cls))
    raise ConfigError(f"{cls.__name__} has no setting {name!r}; known: {known}")


def arg_default(cls: type, name: str, help: str = "", *, unset: bool = False) -> dict[str, Any]:
    """``default=`` and ``help=`` keywords for an argparse option mirroring ``cls.name``.

    ``parser.add_argument("--iterations", type=int, **arg_default(TTOConfig, "iterations", "optimisation steps"))``
    gives the option the dataclass default and the help "optimisation steps (default: 800)".
    With ``unset=True`` the option's own default is ``None`` (so a command can tell "not given"
    from "given the default value", e.g. ``train --resume``), while the help still shows the
    dataclass default.
    """
    value = field_default(cls, name)
    shown = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
    text = f"{help} (default: {shown})" if help else f"default: {shown}"
    return {"default": None if unset else value, "help": text.replace("%", "%%")}
