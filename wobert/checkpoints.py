"""Training checkpoints: a checkpoint's ``state.json`` (:class:`CheckpointState`) and the
directory of checkpoints a run keeps (:class:`Checkpoints`): written whole or not at all,
checked file by file before use, the newest complete one found after a crash."""
from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from wobert.backend import first_line, tf
from wobert.errors import UserError
from wobert.files import replace_dir, sha256_file
from wobert.jsonfile import read_json, write_json

log = logging.getLogger(__name__)

STATE = "state.json"
STREAM_KEYS = ("batch_size", "replicas", "input_pipelines", "seed", "shuffle")
"""What a run's data stream depends on: a saved input position fits only a run with the same."""


class InputPosition(Protocol):
    """A worker's position in its input, saved beside the model."""

    def save(self, directory: Path) -> None: ...


def file_records(directory: Path) -> dict[str, dict[str, int | str]]:
    """Size and sha256 of every file in ``directory`` (what a checkpoint's state.json lists)."""
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(directory.iterdir()) if p.is_file()}


@dataclass(kw_only=True)
class CheckpointState:
    """A checkpoint part's ``state.json``, fields in the file's order. The chief's part holds
    the run's position and settings; another worker's part only ``step`` and ``files``; what
    is None is left out of the file."""

    step: int = 0
    data_position: int | None = None
    model: dict[str, Any] | None = None
    vocab_sha256: str | None = None
    accumulate: int | None = None
    # what the data stream depends on (STREAM_KEYS)
    batch_size: int | None = None
    replicas: int | None = None
    input_pipelines: int | None = None
    seed: int | None = None
    shuffle: bool | None = None
    skipped_steps: int | None = None
    sequences_seen: int | None = None
    files: dict[str, dict[str, int | str]] | None = None  # name -> bytes and sha256 of every other file

    @classmethod
    def from_json(cls, data: dict[str, object], where: Path) -> CheckpointState:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def read(cls, directory: Path) -> CheckpointState:
        path = directory / STATE
        data = read_json(path, "checkpoint state")
        if not isinstance(data, dict) or not isinstance(data.get("step"), int):
            raise UserError(f"{path} is not a checkpoint state")
        return cls.from_json(data, path)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def stream(self) -> dict[str, Any]:
        """The stream settings it was saved with (one input pipeline where it does not say)."""
        stream = {k: getattr(self, k) for k in STREAM_KEYS}
        return {**stream, "input_pipelines": 1 if self.input_pipelines is None else self.input_pipelines}


def damage(directory: Path, step: int) -> str | None:
    """What is wrong with one part of a checkpoint (None: complete): its state.json, and
    each file it lists (present, of the size and sha256 it had when written)."""
    try:
        data = read_json(directory / STATE, "checkpoint state")
        if not isinstance(data, dict) or data.get("step") != step:
            return f"{directory / STATE} is not the state of step {step}"
        state = CheckpointState.from_json(data, directory / STATE)
    except (UserError, OSError) as err:
        return str(err)
    for name, written in (state.files or {}).items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != written["bytes"]:
            return f"{name} has {path.stat().st_size:,} bytes, {written['bytes']:,} were written"
        if sha256_file(path) != written["sha256"]:
            return f"{name} is not what was written (sha256 differs)"
    return None


class Checkpoints:
    """Training checkpoints ``DIR/step-NNNNNNNN/``, complete or absent, checked before use.

    The chief's part holds ``ckpt.*`` (model and optimizer), ``input-0.*`` (its input
    position) and ``state.json`` (step, data position, the run's settings, and the size and
    sha256 of every other file). In a run of W workers, worker K (1 <= K < W) adds
    ``step-NNNNNNNN.worker-K/`` with its own ``input-K.*`` and ``state.json``; a step is
    complete when every part is (the run directory is shared by the workers). Each part is
    written under ``DIR/.tmp-...``, flushed to disk (files, then directories) and renamed;
    each worker keeps its newest ``keep`` parts. Other workers also write the model, as
    collective saving requires, to a scratch directory they delete.
    """

    def __init__(self, directory: str | os.PathLike, keep: int, worker: int = 0) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.worker = worker

    def part(self, step: int, worker: int | None = None) -> Path:
        """The directory of ``worker``'s part (default: this worker's) of step ``step``."""
        worker = self.worker if worker is None else worker
        return self.directory / (f"step-{step:08d}" + (f".worker-{worker}" if worker else ""))

    def parts(self, worker: int | None = None) -> list[Path]:
        """``worker``'s parts (default: this worker's) that have a state.json, oldest first."""
        worker = self.worker if worker is None else worker
        pattern = re.compile(r"step-(\d+)" + (rf"\.worker-{worker}" if worker else "") + "$")
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir()
                 if (m := pattern.match(p.name)) and (p / STATE).is_file()]
        return [p for _, p in sorted(found)]

    def all(self) -> list[Path]:
        """The checkpoints (the chief's parts), oldest first, complete or not."""
        return self.parts(0)

    @staticmethod
    def step(path: Path) -> int:
        return int(re.match(r"step-(\d+)", path.name).group(1))

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    @staticmethod
    def state(path: Path) -> CheckpointState:
        return CheckpointState.read(path)

    def damage(self, path: Path) -> str | None:
        """What is wrong with the checkpoint ``path`` (any of its parts); None if complete."""
        step = self.step(path)
        problem = damage(path, step)
        if problem:
            return problem
        workers = self.state(path).stream()["input_pipelines"]
        for worker in range(1, workers):
            problem = damage(self.part(step, worker), step)
            if problem:
                return f"worker {worker}'s part: {problem}"
        return None

    def newest_complete(self) -> tuple[Path, CheckpointState] | None:
        """The newest complete checkpoint and its state, saying which newer ones are damaged
        (it checks each part's files); raises if there are checkpoints but none is complete."""
        damaged = []
        for path in reversed(self.all()):
            problem = self.damage(path)
            if problem is None:
                for name, why in damaged:
                    log.warning("checkpoint %s is damaged (%s): resuming from %s instead", name, why, path)
                return path, self.state(path)
            damaged.append((path.name, problem))
        if damaged:
            raise UserError(f"no complete checkpoint in {self.directory}: " + "; ".join(
                f"{name}: {why}" for name, why in damaged) + ". Start afresh in another --out")
        return None

    def save(self, checkpoint: tf.train.Checkpoint, inputs: InputPosition, state: CheckpointState) -> Path:
        """Write this worker's part of step ``state.step``; a failed write (a full disk)
        leaves the checkpoints before it as they were and raises ``UserError``."""
        target = self.part(state.step)
        tmp = self.directory / f".tmp-{target.name}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.worker:
                scratch = self.directory / f".tmp-{target.name}-model"
                checkpoint.write(str(scratch / "ckpt"))
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                checkpoint.write(str(tmp / "ckpt"))
            inputs.save(tmp)
            part = replace(state) if self.worker == 0 else CheckpointState(step=state.step)
            part.files = file_records(tmp)
            write_json(tmp / STATE, part.to_json())
            replace_dir(tmp, target)
        except (OSError, tf.errors.OpError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            newest = self.latest()
            raise UserError(
                f"could not write checkpoint {target} ({first_line(err)}): stopped at step "
                f"{state.step}; " + (f"the newest checkpoint, {newest}, is as it was" if newest
                                        else "no checkpoint was written before")
                + ": free disk space and run again with --resume") from None
        for old in self.parts()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def restore(self, checkpoint: tf.train.Checkpoint, path: Path) -> None:
        try:
            checkpoint.read(str(path / "ckpt")).assert_existing_objects_matched()
        except (tf.errors.OpError, IndexError, ValueError) as err:  # IndexError: a file cut short
            raise UserError(f"checkpoint {path} cannot be restored ({first_line(err)})") from None

    def clean(self) -> None:
        """Remove scratch directories left by a killed run."""
        if self.directory.is_dir():
            for p in self.directory.glob(".tmp-step-*"):
                shutil.rmtree(p, ignore_errors=True)
