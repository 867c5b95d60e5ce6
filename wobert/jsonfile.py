"""JSON files of the pipeline (configs, manifests, results): read with clear errors, written whole."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wobert.errors import UserError
from wobert.files import replace_file

#: the file name endings of JSON lines (corpora, task data)
JSON_SUFFIXES = (".jsonl", ".json")
_ABSENT = object()


def read_json(path: str | os.PathLike, what: str = "JSON file", hint: str = "",
              default: Any = _ABSENT) -> Any:
    """Parse ``path``. A missing file returns ``default`` when one is given, else raises
    FileNotFoundError naming ``what`` (and ``hint``); bad JSON or bytes that are not UTF-8
    raise UserError naming the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if default is not _ABSENT:
            return default
        raise FileNotFoundError(f"{what} not found: {path}{hint}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}): a {what} holds UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2,
               sort_keys: bool = False, default: Any = None) -> None:
    """Write ``obj`` as UTF-8 JSON and a final newline; a temporary file is flushed to disk
    and renamed into place, so a reader (or a run after a crash) never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=sort_keys, default=default)
    tmp.write_text(text + "\n", encoding="utf-8")
    replace_file(tmp, path)
