"""Checks of what the user gives, before any work: the types of a config's fields, the range
of a numeric option, an output directory. Light: no heavy import, so ``--help`` stays fast."""
from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wobert.errors import UserError

_UNIONS = (typing.Union, types.UnionType)


def _describe(hint: Any) -> str:
    """``int`` -> 'an integer', ``list[str]`` -> 'a list of strings', ... (for messages)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s" if args else "a list"
    if origin is dict:
        return "a JSON object"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "null"}.get(hint, str(hint))


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in _UNIONS:
        return any(_matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args \
            else isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)


def check_field_types(obj: Any, where: str) -> None:
    """Raise ``UserError`` naming the first field of the dataclass ``obj`` whose value is not of
    its annotated type (``"100"`` for an int, ``true`` for a number, ...)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _matches(value, hints[f.name]):
            raise UserError(f"{where}: {f.name} must be {_describe(hints[f.name])}, not {value!r}")


def check_output_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """``path`` as a directory to write into: refused when it is a file, lies under a file,
    or sits in a directory this process cannot write (before any work starts)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a directory")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: cannot write in {existing}")
    return path


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it can be read as a file (a pipe too: ``<(...)`` in a shell);
    else FileNotFoundError naming ``what`` (a directory is named as one)."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


# ---------------------------------------------------------------------------------------
# argparse types: a bad value is reported as "argument --NAME: ..." (exit status 2)
# ---------------------------------------------------------------------------------------


def number(kind: type = int, minimum: float | None = None, maximum: float | None = None, *,
           above: bool = False, below: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) in ``[minimum, maximum]`` (``above``/``below``:
    the bound itself excluded)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{'an integer' if kind is int else 'a number'} is needed, not {text!r}") from None
        low = minimum is not None and (value <= minimum if above else value < minimum)
        high = maximum is not None and (value >= maximum if below else value > maximum)
        if low or high or value != value:  # value != value: NaN
            bounds = [f"{'>' if above else '>='} {minimum:g}" if minimum is not None else "",
                      f"{'<' if below else '<='} {maximum:g}" if maximum is not None else ""]
            raise argparse.ArgumentTypeError(
                f"must be {' and '.join(b for b in bounds if b)}, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


POSITIVE = number(int, 1)
NON_NEGATIVE = number(int, 0)


def output_dir(text: str) -> str:
    """An argparse type: a directory to write into (see :func:`check_output_dir`)."""
    try:
        check_output_dir(text, "")
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err).strip()) from None
    return text
