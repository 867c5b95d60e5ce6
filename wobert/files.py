"""Writes that survive a crash or a power cut: written aside, flushed to disk (fsync), renamed
into place, and the directory that holds the new name flushed too; and files' checksums."""
from __future__ import annotations

import hashlib
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


def copy_file(source: str | os.PathLike, target: Path) -> None:
    """Copy ``source`` to ``target`` durably (written aside, then renamed into place)."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    replace_file(tmp, target)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
