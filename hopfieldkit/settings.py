"""Settings as one dataclass: typed, range-checked fields that also generate the command-line flags.

A field declares its type with its annotation and its range, choices and help in its metadata::

    @dataclass
    class Config:
        lr: float = setting(1e-3, "peak learning rate", gt=0)
        steps: int | None = setting(None, "None: from the recipe", ge=1)

:func:`coerce` parses one value (a string from the command line, or a JSON value) to the field's
declared type and checks its range, with an error that names the field; :func:`check` checks a whole
instance; :func:`add_arguments` adds one ``--flag`` per field to an ``argparse`` parser (booleans get
``--flag`` / ``--no-flag``; flags that are not given do not appear in the parsed namespace, so a caller
can tell a given flag from a default).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from typing import Any

__all__ = ["SettingError", "Parser", "setting", "coerce", "check", "add_arguments", "from_mapping", "field_types"]


class SettingError(ValueError):
    """A setting that does not parse or lies outside its range; the message names the setting."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`SettingError` (one line for the caller to
    print) instead of printing the usage and exiting."""

    def error(self, message: str):
        raise SettingError(message)


def setting(default: Any = dataclasses.MISSING, help: str = "", *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, choices: tuple | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its help text, range (``ge``/``gt``/``le``/``lt``) and ``choices``."""
    meta = dict(help=help, ge=ge, gt=gt, le=le, lt=lt, choices=choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.lru_cache(maxsize=None)
def field_types(cls) -> dict[str, Any]:
    """{field name: resolved type annotation} of a dataclass (string annotations resolved; once per class)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _split_optional(tp) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) of ``X``, ``X | None`` or ``Optional[X]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _parse(name: str, value: Any, tp) -> Any:
    base, optional = _split_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise SettingError(f"{name}: expected {getattr(base, '__name__', base)}, got None")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise SettingError(f"{name}: expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise SettingError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise SettingError(f"{name}: expected an integer, got {value!r}")
    if base is float:
        if isinstance(value, bool):
            raise SettingError(f"{name}: expected a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise SettingError(f"{name}: expected a number, got {value!r}") from None
        if not math.isfinite(out):
            raise SettingError(f"{name}: expected a finite number, got {value!r}")
        return out
    if base is str:
        if not isinstance(value, str):
            raise SettingError(f"{name}: expected a string, got {value!r}")
        return value
    if typing.get_origin(base) is dict or base is dict:
        if not isinstance(value, dict):
            raise SettingError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def coerce(cls, name: str, value: Any) -> Any:
    """``value`` parsed to the declared type of field ``name`` of dataclass ``cls`` and range-checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise SettingError(f"unknown setting {name!r}; valid: {', '.join(sorted(fields))}")
    out = _parse(name, value, field_types(cls)[name])
    _check_range(name, out, fields[name].metadata)
    return out


def _check_range(name: str, value: Any, meta) -> None:
    if value is None or isinstance(value, (bool, str, dict)):
        if meta.get("choices") is not None and value is not None and value not in meta["choices"]:
            raise SettingError(f"{name}: expected one of {list(meta['choices'])}, got {value!r}")
        return
    for key, ok, word in (("ge", lambda v, b: v >= b, "≥"), ("gt", lambda v, b: v > b, ">"),
                          ("le", lambda v, b: v <= b, "≤"), ("lt", lambda v, b: v < b, "<")):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise SettingError(f"{name}: expected a value {word} {bound}, got {value!r}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise SettingError(f"{name}: expected one of {list(meta['choices'])}, got {value!r}")


def check(obj) -> None:
    """Check every field of a dataclass instance against its type and range (raises :class:`SettingError`)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        parsed = coerce(type(obj), f.name, value)
        if parsed != value or type(parsed) is not type(value):
            object.__setattr__(obj, f.name, parsed)


def from_mapping(cls, values: dict, what: str = "config") -> Any:
    """An instance of ``cls`` from a mapping, every value coerced; unknown keys are an error."""
    if not isinstance(values, dict):
        raise SettingError(f"{what}: expected a mapping of settings, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SettingError(f"{what}: unknown settings {unknown}; valid: {', '.join(sorted(names))}")
    return cls(**{k: coerce(cls, k, v) for k, v in values.items()})


def add_arguments(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of ``cls`` (``snake_case`` → ``--kebab-case``); values are parsed by
    :func:`coerce`, so a bad value is refused with the field's name. Flags not given are absent from
    the namespace (``argparse.SUPPRESS``)."""
    types_ = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else None
        text = meta.get("help", "")
        text = f"{text} (default: {default})" if text else f"(default: {default})"
        base, _ = _split_optional(types_[f.name])
        if base is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=text)
            continue

        def parse(v, _name=f.name):
            try:
                return coerce(cls, _name, v)
            except SettingError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parse.__name__ = getattr(base, "__name__", "value")
        few = meta.get("choices") and len(meta["choices"]) <= 8
        metavar = "{" + ",".join(map(str, meta["choices"])) + "}" if few else f.name.upper()
        parser.add_argument(flag, dest=f.name, type=parse, default=argparse.SUPPRESS, metavar=metavar, help=text)
