"""Job configs, read one way: a JSON object (a file such as ``vocab/*.json``,
``pretrain/*.json`` or ``pretrain/data.json``, or a mapping) becomes a typed dataclass.

Unknown keys are refused naming the file and the key (``description`` is a free-text comment
any job may hold), and so are missing ones (fields without a default); relative paths in the
path fields start from a given root; the options given on the command line (``None``: not
given) go on top. The field types and ranges are the
dataclass's business (its ``__post_init__``, with :func:`wobert.checks.check_field_types`);
its ``UserError`` is prefixed with the file. Light, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from wobert.errors import UserError
from wobert.jsonfile import read_json

T = TypeVar("T")
COMMENT = "description"
Job = str | os.PathLike | Mapping[str, Any]


def read_job(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a ``UserError`` naming the file if it holds anything else."""
    job = read_json(path, f"{what} config")
    if not isinstance(job, dict):
        raise UserError(f"{path}: a {what} config is a JSON object, not {type(job).__name__}")
    return job


def resolve_paths(values: Mapping[str, Any], paths: Iterable[str], root: str | os.PathLike) -> dict[str, Any]:
    """``values`` with the relative paths of the fields ``paths`` (a string or a list of
    strings) taken from ``root``; a value of another type is left for the type check."""
    out = dict(values)
    for key in paths:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = str(Path(root, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = [str(Path(root, v)) for v in value]
    return out


def load_job(cls: type[T], job: Job | None = None, *, what: str, root: str | os.PathLike | None = None,
             paths: Iterable[str] = (), base: Mapping[str, Any] | None = None,
             overrides: Mapping[str, Any] | None = None) -> T:
    """A ``cls`` (a dataclass) from ``base``, then ``job`` (a JSON file or a mapping; its
    ``paths`` fields relative to ``root``, left as they are without one), then the
    ``overrides`` that are not None. ``what`` names the kind of job in messages."""
    is_file = job is not None and not isinstance(job, Mapping)
    where = str(job) if is_file else f"{what} config"
    values = dict(read_job(job, what) if is_file else job or {})
    values.pop(COMMENT, None)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if root is not None:
        values = resolve_paths(values, paths, root)
    values = {**(base or {}), **values, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(missing)}")
    try:
        return cls(**values)
    except UserError as err:
        if not is_file:
            raise
        raise UserError(f"{where}: {err}") from None


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parsed options named like the fields of the dataclass ``cls`` (None: not given)."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
