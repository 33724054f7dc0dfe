"""Strict parsing of JSON/TOML documents into frozen dataclasses.

One mechanism for every typed document of tlc (bundle manifests, target files): unknown keys
are errors that list the valid keys, missing required keys are errors, and values are checked
against the field's type annotation (``int``, ``float``, ``str``, ``bool``, ``Literal``,
``Optional``, ``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses).
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import sys
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import SchemaError

T = TypeVar("T")

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 2


def show(value: Any) -> str:
    """Short one-line repr of a document value for error messages (long strings and deep lists cut)."""
    return _REPR.repr(value)


def parse(cls: type[T], data: Any, where: str = "document") -> T:
    """Build dataclass ``cls`` from ``data``; raise SchemaError naming ``where`` on any mismatch."""
    return _convert(cls, data, where)


def to_dict(obj: Any) -> Any:
    """Plain JSON-ready structure of a (nested) dataclass; tuples become lists. A field declared with
    ``metadata={"omit_default": True}`` is left out while it holds its default (documents without
    the feature stay as they were, readable by readers that predate it)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def _parse_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected a table/object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {', '.join(map(show, unknown[:5]))}; "
                          f"valid keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise SchemaError(f"{where}: {exc}") from None


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return get_type_hints(cls, vars(module) if module else None)


def _convert(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _parse_dataclass(tp, value, where)
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if not any(type(value) is type(a) and value == a for a in allowed):  # True is not 1
            raise SchemaError(f"{where}: {show(value)} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0] if len(errors) == 1 else f"{where}: {show(value)} matches no allowed type")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise SchemaError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: expected a table/object, got {type(value).__name__}")
        return {_convert(key_tp, k, where): _convert(val_tp, v, f"{where}.{_key(k)}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise SchemaError(f"{where}: expected a finite number, got {show(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{where}: expected an integer, got {show(value)}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise SchemaError(f"{where}: expected {tp.__name__}, got {show(value)}")
        return value
    raise SchemaError(f"{where}: unsupported schema type {tp!r}")


def _key(key: Any) -> str:
    """A table key as it reads in a location like ``artifacts[0].files.model``."""
    text = str(key)
    return text if text.isprintable() and len(text) <= 60 else show(key)


def _finite(value: int | float) -> bool:
    """True for ints and finite floats (an int too large for a float is not finite either)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
