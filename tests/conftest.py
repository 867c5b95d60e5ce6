"""Shared fixtures: where the optional real data lives, and small vocabularies.

Hugging Face's hub is offline and its cache (HF_HOME, remote-code modules included) a temporary
directory for the whole session: nothing downloads, nothing lands in the user's cache.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_HF_HOME = tempfile.TemporaryDirectory(prefix="wobert-test-hf-home-")
os.environ.update(HF_HUB_OFFLINE="1", HF_HOME=_HF_HOME.name, TRANSFORMERS_VERBOSITY="error")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: minutes long; run by `make test-long`, left out of `make test`")


def shared_data_dir() -> Path | None:
    """``$WOBERT_DATA`` or ``<repo>/../shared/data``, if it exists."""
    path = Path(os.environ.get("WOBERT_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data directory; skips the test where it is absent (a fresh clone)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data (../shared/data or $WOBERT_DATA) is not present")
    return path


@pytest.fixture(scope="session")
def base_vocab_path(shared_data: Path) -> Path:
    """Google's bert-base-chinese vocab.txt from the shared data."""
    path = shared_data / "bert-base-chinese" / "vocab.txt"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


@pytest.fixture(scope="session")
def wobert_vocab(base_vocab_path: Path) -> dict[str, int]:
    """WoBERT-style vocabulary: bert-base-chinese simplified as bert4keras does, then the
    20,000 most frequent words of jieba's dictionary not already in it."""
    from wobert.segment import jieba_words
    from wobert.tokenizer import extend_vocab, read_vocab, simplify_vocab

    simplified, _ = simplify_vocab(read_vocab(base_vocab_path))
    return extend_vocab(simplified, jieba_words(20_000, exclude=simplified))
