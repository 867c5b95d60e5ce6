"""The ``manifest.json`` of a records directory: typed, read and written in one place, and
what makes two builds the same (resumable) or a build fit a vocabulary.

A manifest records the options that decide the shards' content, the vocabulary and corpus
files (sha256), the special ids and random-token ranges of the masking, and each finished
shard with its size, sha256 and counts; a complete build adds the skipped lines and totals.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from wobert.errors import UserError
from wobert.files import sha256_file
from wobert.jsonfile import read_json, write_json
from wobert.masking import MaskSpec
from wobert.tfrecord import count_records

FORMAT = "wobert-records/1"
MANIFEST = "manifest.json"
VOCAB_SUBDIR = "vocab"  # the copy of the vocabulary directory the records were built with
# Options that decide the content of the shards: a directory built with others is refused.
CONTENT_KEYS = ("maxlen", "masking", "mask_rate", "max_predictions", "dynamic", "dupe_factor",
                "seed", "shard_chars", "text_field")
TOTALS = ("documents", "sequences", "tokens", "predictions")


def _checked_keys(cls: type, data: object, where: str) -> dict[str, Any]:
    """``data`` as the keyword arguments of dataclass ``cls``; other keys raise ``UserError``."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return data


@dataclass(kw_only=True)
class InputFile:
    """A corpus file the records were built from."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> InputFile:
        return cls(path=str(path), bytes=path.stat().st_size, sha256=sha256_file(path))

    @classmethod
    def from_json(cls, data: object, where: str = MANIFEST) -> InputFile:
        return cls(**_checked_keys(cls, data, f"{where}: inputs"))

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(kw_only=True)
class Shard:
    """A finished shard: its file, checksum and size (``bytes``: None in manifests written
    before sizes were recorded), and what it holds."""

    file: str
    sha256: str
    bytes: int | None = None
    documents: int
    characters: int
    sequences: int
    tokens: int
    predictions: int

    @classmethod
    def from_json(cls, data: object, where: str = MANIFEST) -> Shard:
        return cls(**_checked_keys(cls, data, f"{where}: shards"))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name == "bytes" and self.bytes is None)}


@dataclass(kw_only=True)
class Manifest:
    """A records directory's manifest; fields in the order of the JSON file. A data source
    that is not a records directory may fill only what training reads (vocab, maxlen)."""

    format: str = FORMAT
    complete: bool = False
    maxlen: int = 0
    masking: str = "token"
    mask_rate: float = 0.0
    max_predictions: int = 0
    dynamic: bool = False
    dupe_factor: int = 1
    seed: int = 0
    shard_chars: int = 0
    text_field: str = "text"
    vocab_size: int | None = None
    vocab_sha256: str | None = None
    tokenizer_sha256: str | None = None
    tokenizer: str = ""
    vocab_dir: str = ""
    vocab_source: str = ""
    special_ids: dict[str, int] = field(default_factory=dict)
    random_ranges: list[list[int]] = field(default_factory=list)
    inputs: list[InputFile] = field(default_factory=list)
    shards: list[Shard] = field(default_factory=list)
    # a complete build's skipped lines and totals (absent before)
    skipped: dict[str, Any] | None = None
    skipped_summary: str | None = None
    documents: int | None = None
    sequences: int | None = None
    tokens: int | None = None
    predictions: int | None = None

    @classmethod
    def from_json(cls, data: object, where: str = MANIFEST) -> Manifest:
        values = dict(_checked_keys(cls, data, where))
        values["inputs"] = [InputFile.from_json(i, where) for i in values.get("inputs", [])]
        values["shards"] = [Shard.from_json(s, where) for s in values.get("shards", [])]
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in field order; the totals only once complete."""
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and (f.name in TOTALS or f.name.startswith("skipped")):
                continue
            data[f.name] = [v.to_json() for v in value] if f.name in ("inputs", "shards") else value
        return data

    @classmethod
    def read(cls, data_dir: str | Path) -> Manifest:
        """The ``manifest.json`` of a records directory (clear error when absent or broken)."""
        path = Path(data_dir) / MANIFEST
        data = read_json(path, MANIFEST, hint=": build the records first (wobert data build)")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{path} is not a wobert records manifest ({FORMAT})")
        return cls.from_json(data, str(path))

    def write(self, data_dir: str | Path) -> None:
        write_json(Path(data_dir) / MANIFEST, self.to_json())

    def set_shards(self, shards: Mapping[str, Shard], *, complete: bool) -> None:
        """List ``shards`` (by file name); ``complete`` adds the totals and marks the build done."""
        self.shards = sorted(shards.values(), key=lambda s: s.file)
        if complete:
            for key in TOTALS:
                setattr(self, key, sum(getattr(s, key) for s in self.shards))
            self.complete = True

    # compatibility

    def fingerprint(self) -> dict[str, object]:
        """What must match for a directory to be resumed: options, inputs, vocabulary."""
        found = {k: getattr(self, k) for k in CONTENT_KEYS + ("vocab_sha256", "tokenizer_sha256")}
        found["inputs"] = [(i.sha256, i.bytes) for i in self.inputs]
        return found

    def differences(self, old: Manifest) -> list[str]:
        """How this build differs from the ``old`` one in what decides the shards (empty:
        ``old``'s finished shards are this build's)."""
        before, now = old.fingerprint(), self.fingerprint()
        named = {"vocab_sha256": "another vocab.txt", "tokenizer_sha256": "another tokenizer_config.json",
                 "inputs": "other corpus files"}
        return [named.get(k) or f"{k} {before[k]!r} -> {now[k]!r}" for k in now if before[k] != now[k]]

    def check_vocabulary(self, size: int, sha256: str, vocab_file: Path) -> None:
        """Raise ``UserError`` unless the records were built with this vocab.txt (as far as
        the manifest says)."""
        if self.vocab_size is not None and self.vocab_size != size:
            raise UserError(f"the data (manifest.json) was built with a vocab of {self.vocab_size} tokens, "
                            f"but {vocab_file} has {size}")
        if self.vocab_sha256 is not None and self.vocab_sha256 != sha256:
            raise UserError(f"the data (manifest.json) was built with another vocab.txt than "
                            f"{vocab_file} (sha256 {self.vocab_sha256[:12]}... vs {sha256[:12]}...)")

    # what the records hold

    def mask_spec(self) -> MaskSpec:
        """The masking the records were built with (used for dynamic masking)."""
        return MaskSpec(self.special_ids["mask"], tuple(map(tuple, self.random_ranges)),
                        self.mask_rate, self.max_predictions, self.masking == "wwm")

    def stored_features(self) -> list[str]:
        """The features a record holds besides ``token_ids``."""
        if self.dynamic:
            return ["word_starts"] if self.masking == "wwm" else []
        return ["masked_positions", "masked_ids"]


def read_manifest(data_dir: str | Path) -> Manifest:
    """The ``manifest.json`` of a records directory (see :meth:`Manifest.read`)."""
    return Manifest.read(data_dir)


def damaged_shards(data_dir: str | Path, manifest: Manifest, *, full: bool = False) -> list[str]:
    """What is wrong with the shards ``manifest`` lists: a missing file, another size than it
    records (cheap: one stat each), and with ``full`` another sha256 or record count."""
    problems = []
    for shard in manifest.shards:
        name, path = shard.file, Path(data_dir) / shard.file
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif shard.bytes is not None and path.stat().st_size != shard.bytes:
            problems.append(f"{name} has {path.stat().st_size:,} bytes, the manifest {shard.bytes:,}")
        elif full and sha256_file(path) != shard.sha256:
            problems.append(f"{name} differs from its sha256 in the manifest")
        elif full and count_records(path) != shard.sequences:
            problems.append(f"{name} holds {count_records(path):,} records, the manifest {shard.sequences:,}")
    return problems


def check_records(data_dir: str | Path, manifest: Manifest, *, full: bool = False) -> None:
    """Raise ``UserError`` naming the damaged shards (see :func:`damaged_shards`)."""
    problems = damaged_shards(data_dir, manifest, full=full)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UserError(f"{data_dir}: damaged records: {shown}. The same `wobert data build` command "
                        "rebuilds the damaged shards (and only them)")
