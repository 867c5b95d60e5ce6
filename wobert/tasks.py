"""Labelled text-classification data: the CLUE tasks and the user's own JSONL/TSV files.

A task is a ``TaskSpec`` (which fields hold the text, the optional second text and the label;
which files hold train/dev/test; the label set; its finetuning defaults, which
``wobert finetune --help`` shows). ``load_task`` reads the files of a task
directory into ``TaskData``; ``write_predictions`` writes CLUE submission files.

File formats and quirks:

- JSON lines (``.json``/``.jsonl``), as CLUE ships them, read in binary line by line so that
  U+2028 inside a text never splits a record; a missing final newline is fine, blank lines
  are ignored. A malformed line is an error naming ``file:line``.
- TSV (``.tsv``/``.txt``/other): a header row names the fields; a row with a different number
  of columns is an error naming ``file:line``; a blank line is ignored, a row of empty cells
  is a row (an empty text).
- Labels are compared as strings with surrounding whitespace removed; an empty label is no
  label (a test file's). A row without an ``id`` takes its position among the rows (0, 1, ...).
- A list-valued field (CSL's ``keyword``) is joined with ``LIST_SEPARATOR``.
- ``labels.json`` (CLUE: one ``{"label": ...}`` object per line, or a JSON array of such objects
  or of strings) fixes the label set and order; a gold label outside it is an error with the value.
- Rows whose label is in ``skip_labels`` (``-`` in OCNLI/CMNLI: annotators did not agree) are
  skipped and counted per file.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wobert.checks import check_input_file
from wobert.errors import UserError
from wobert.finetune_config import FinetuneConfig
from wobert.jsonfile import JSON_SUFFIXES

LIST_SEPARATOR = "；"
NLI_LABELS = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class TaskSpec:
    """Where a task's texts and labels are: field names, candidate file names, label set.

    ``train``/``dev``/``test`` list candidate file names inside the task directory; the first
    that exists is used. ``labels`` is the label set when the directory has no labels.json
    (``None``: the sorted labels seen in the training file). ``defaults`` are the task's
    hyper-parameters and budgets, what ``wobert finetune --task NAME`` trains with unless an
    option says otherwise.
    """

    name: str
    text_field: str
    pair_field: str | None = None
    label_field: str = "label"
    id_field: str = "id"
    labels: tuple[str, ...] | None = None
    train: tuple[str, ...] = ("train.json", "train.jsonl", "train.tsv")
    dev: tuple[str, ...] = ("dev.json", "dev.jsonl", "dev.tsv")
    test: tuple[str, ...] = ("test.json", "test.jsonl", "test.tsv")
    skip_labels: tuple[str, ...] = ()
    defaults: FinetuneConfig = field(default_factory=FinetuneConfig)


# The CLUE tasks; the defaults where they differ from FinetuneConfig's (maxlen 128, 3 epochs,
# batch 32, lr 2e-5): short TNEWS titles, long IFLYTEK descriptions and CSL abstracts.
TASKS: dict[str, TaskSpec] = {
    # TNEWS: short news titles into 15 categories
    "tnews": TaskSpec("tnews", "sentence", defaults=FinetuneConfig(maxlen=64)),
    # IFLYTEK: app descriptions into 119 categories
    "iflytek": TaskSpec("iflytek", "sentence", defaults=FinetuneConfig(maxlen=256)),
    # AFQMC: do two customer questions mean the same?
    "afqmc": TaskSpec("afqmc", "sentence1", "sentence2", labels=("0", "1")),
    # OCNLI: natural language inference on original Chinese pairs ('-': annotators disagreed)
    "ocnli": TaskSpec(
        "ocnli", "sentence1", "sentence2", labels=NLI_LABELS, skip_labels=("-",),
        train=("train.50k.json", "train.json", "train.30k.json", "train.10k.json", "train.3k.json"),
        defaults=FinetuneConfig(lr=3e-5),
    ),
    # CMNLI: translated MNLI pairs
    "cmnli": TaskSpec("cmnli", "sentence1", "sentence2", labels=NLI_LABELS, skip_labels=("-",),
                      defaults=FinetuneConfig(epochs=2, lr=3e-5)),
    # CSL: is every keyword a keyword of the abstract? Keywords first, so truncation cuts the abstract.
    "csl": TaskSpec("csl", "keyword", "abst", labels=("0", "1"),
                    defaults=FinetuneConfig(maxlen=256, batch_size=16)),
}


@dataclass
class Example:
    """One row: text, optional second text, gold label string (``None`` when unlabelled), id."""

    text: str
    pair: str | None
    label: str | None
    id: Any
    line: int


@dataclass
class Split:
    """The examples of one file, with the rows skipped by reason."""

    path: Path
    examples: list[Example]
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def labelled(self) -> bool:
        """Whether every example has a gold label (test files usually have none)."""
        return bool(self.examples) and all(e.label is not None for e in self.examples)

    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    def pairs(self) -> list[str] | None:
        """The second texts, or ``None`` for a single-sentence task."""
        if all(e.pair is None for e in self.examples):
            return None
        return [e.pair or "" for e in self.examples]

    def ids(self) -> list[Any]:
        return [e.id for e in self.examples]


@dataclass
class TaskData:
    """A task's label set and its train/dev/test splits (``None`` where there is no file)."""

    spec: TaskSpec
    labels: list[str]
    train: Split | None
    dev: Split | None
    test: Split | None

    def label_ids(self, split: Split) -> list[int]:
        """Gold label indices of a labelled split; an unknown label is an error with its value."""
        index = {label: i for i, label in enumerate(self.labels)}
        ids = []
        for e in split.examples:
            if e.label not in index:
                shown = ", ".join(self.labels[:20]) + (" ..." if len(self.labels) > 20 else "")
                raise UserError(
                    f"{split.path}:{e.line}: label {e.label!r} is not one of the task's "
                    f"{len(self.labels)} labels ({shown})"
                )
            ids.append(index[e.label])
        return ids

    def summary(self) -> dict[str, Any]:
        """File names, sizes and skipped rows of each split (for result.json)."""
        out: dict[str, Any] = {"task": self.spec.name, "num_labels": len(self.labels)}
        for name in ("train", "dev", "test"):
            split = getattr(self, name)
            if split is not None:
                out[name] = {"file": str(split.path), "examples": len(split),
                             "skipped": dict(split.skipped)}
        return out


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` from a JSON-lines file; errors name ``file:line``."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{lineno}: not UTF-8 ({err.reason})") from None
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def read_tsv(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` from a tab-separated file whose first line names the fields."""
    header: list[str] | None = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{lineno}: not UTF-8 ({err.reason})") from None
            if not line.strip() and "\t" not in line:  # a blank line; a row of empty cells is a row
                continue
            cells = line.split("\t")
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if len(cells) != len(header):
                raise UserError(
                    f"{path}:{lineno}: {len(cells)} tab-separated columns, the header has {len(header)}"
                )
            yield lineno, dict(zip(header, cells))


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON lines for ``.json``/``.jsonl`` files, TSV with a header otherwise."""
    path = check_input_file(path, "data file")
    return read_jsonl(path) if path.suffix.lower() in JSON_SUFFIXES else read_tsv(path)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def read_split(path: str | Path, spec: TaskSpec) -> Split:
    """Read one file of a task: texts, labels (if present) and ids; skip rows in ``skip_labels``."""
    path = Path(path)
    examples: list[Example] = []
    skipped: Counter = Counter()
    for lineno, row in read_rows(path):
        for name in (spec.text_field, spec.pair_field):
            if name is not None and row.get(name) is None:
                raise UserError(
                    f"{path}:{lineno}: no field {name!r} (fields: {', '.join(map(str, row))})"
                )
        label = row.get(spec.label_field)
        label = None if label is None else str(label).strip() or None  # "": unlabelled (TSV test)
        if label in spec.skip_labels:
            skipped[f"label {label!r}"] += 1
            continue
        examples.append(Example(
            text=_text(row[spec.text_field]),
            pair=_text(row[spec.pair_field]) if spec.pair_field else None,
            label=label,
            id=row.get(spec.id_field, len(examples)),
            line=lineno,
        ))
    return Split(path, examples, skipped)


def read_labels(path: str | Path) -> list[str]:
    """Label set from a CLUE ``labels.json``: JSON lines ``{"label": ...}`` or a JSON array."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            items = [(0, item) for item in json.loads(text)]
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    else:
        items = list(read_jsonl(path))
    labels = []
    for lineno, item in items:
        label = item.get("label") if isinstance(item, dict) else item
        if label is None:
            raise UserError(f"{path}:{lineno}: a label entry without a 'label' field")
        labels.append(str(label))
    if not labels or len(set(labels)) != len(labels):
        raise UserError(f"{path}: labels must be a non-empty list without repeats")
    return labels


def task_dir(data: str | Path, spec: TaskSpec) -> Path:
    """The directory holding a task's files: ``DATA/clue/NAME``, ``DATA/NAME`` or ``DATA`` itself."""
    data, name = Path(data), spec.name
    for candidate in (data / "clue" / name, data / name, data):
        if candidate.is_dir() and any(_first_existing(candidate, names) for names in
                                      (spec.train, spec.dev, spec.test)):
            return candidate
    raise FileNotFoundError(
        f"no files of task {name!r} under {data} (looked for {', '.join(spec.train + spec.dev)} "
        f"in {data / 'clue' / name}, {data / name} and {data})"
    )


def _first_existing(directory: Path | None, names: Sequence[str]) -> Path | None:
    if directory is None:
        return None
    return next((directory / n for n in names if (directory / n).is_file()), None)


def load_task(
    spec: TaskSpec | str,
    data: str | Path | None = None,
    *,
    train: str | Path | None = None,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    labels: str | Path | Sequence[str] | None = None,
) -> TaskData:
    """Read a task: files from ``data`` (a root holding ``clue/<task>/`` or the task directory),
    each overridable by an explicit path; labels from ``labels`` (a labels.json or a list),
    else ``labels.json`` in the directory, else the spec's, else the sorted training labels.
    """
    spec = TASKS[spec] if isinstance(spec, str) else spec
    directory = task_dir(data, spec) if data is not None else None
    paths = {
        "train": Path(train) if train else _first_existing(directory, spec.train),
        "dev": Path(dev) if dev else _first_existing(directory, spec.dev),
        "test": Path(test) if test else _first_existing(directory, spec.test),
    }
    splits = {name: read_split(path, spec) if path else None for name, path in paths.items()}
    if labels is None and directory is not None and (directory / "labels.json").is_file():
        labels = directory / "labels.json"
    if isinstance(labels, (str, Path)):
        label_list = read_labels(labels)
    elif labels is not None:
        label_list = [str(label) for label in labels]
    elif spec.labels is not None:
        label_list = list(spec.labels)
    else:
        label_list = seen_labels(splits["dev"] if splits["train"] is None else splits["train"])
    data_ = TaskData(spec, label_list, **splits)
    for split in (data_.train, data_.dev):
        if split is not None:
            if not split.labelled:
                missing = next((e for e in split.examples if e.label is None), None)
                where = f"{split.path}:{missing.line}" if missing else str(split.path)
                raise UserError(f"{where}: no {spec.label_field!r} field (or no rows): "
                                 "training and dev files need labels")
            data_.label_ids(split)
    return data_


def seen_labels(split: Split | None) -> list[str]:
    """The sorted labels of a split (the label set of a task that names none); at least two."""
    if split is None:
        return []
    labels = sorted({e.label for e in split.examples if e.label is not None})
    if split.labelled and len(labels) < 2:
        raise UserError(f"{split.path}: every row has the label {labels[0]!r}: a classifier needs "
                         "examples of at least two labels")
    return labels


def holdout(split: Split, fraction: float, seed: int = 0) -> tuple[Split, Split]:
    """Cut a seeded random ``fraction`` off a split (a dev set for data that has none)."""
    order = list(range(len(split)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(order) * fraction))
    kept, held = sorted(order[cut:]), sorted(order[:cut])
    return (Split(split.path, [split.examples[i] for i in kept], split.skipped),
            Split(split.path, [split.examples[i] for i in held]))


def write_predictions(path: str | Path, ids: Sequence[Any], labels: Sequence[str]) -> Path:
    """Write CLUE submission lines ``{"id": ..., "label": ...}`` (e.g. ``tnews_predict.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for id_, label in zip(ids, labels, strict=True):
            f.write(json.dumps({"id": id_, "label": label}, ensure_ascii=False) + "\n")
    return path


def predictions_file(task: str) -> str:
    """The submission file name of a task: ``<task>_predict.json``."""
    return f"{task}_predict.json"
