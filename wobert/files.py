"""Writes that survive a crash or a power cut: written aside, flushed to disk (fsync), renamed
into place, and the directory that holds the new name flushed too."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """Flush every file under ``root``, then every directory, deepest first."""
    for directory, _, names in os.walk(root, topdown=False):
        for name in names:
            with open(os.path.join(directory, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(directory)


def replace_dir(new: Path, target: Path) -> None:
    """Move the finished directory ``new`` to ``target``, replacing an older one, durably:
    ``new`` is flushed first, so after a crash ``target`` is the old or the new, complete."""
    fsync_tree(new)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def replace_file(tmp: Path, target: Path) -> None:
    """Rename the written file ``tmp`` to ``target`` durably (``tmp`` flushed first)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    fsync_dir(target.parent)
