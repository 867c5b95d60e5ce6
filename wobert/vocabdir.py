"""The vocabulary directory that every stage reads and writes, and its ``vocab.txt`` format.

A directory holds ``vocab.txt`` (a token per line, the line index is the id), and, as
``wobert vocab build`` writes it, ``tokenizer_config.json`` (the tokenizer's level and
settings), ``keep_tokens.json`` (the id in the base vocab of each kept base token) and
``compound_tokens.json`` (the base ids each new word starts from). A Google BERT directory
holds ``vocab.txt`` alone. :class:`VocabDir` names, reads, writes (durably), checksums and
validates these files; :class:`Vocabulary` is what reading one gives.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wobert.errors import UserError
from wobert.files import copy_file, replace_file, sha256_file
from wobert.jsonfile import read_json, write_json

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
KEEP_FILE = "keep_tokens.json"
COMPOUND_FILE = "compound_tokens.json"
#: the files of a vocabulary directory, in the order they are fingerprinted and copied
FILES = (VOCAB_FILE, CONFIG_FILE, KEEP_FILE, COMPOUND_FILE)


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Read a BERT ``vocab.txt`` exactly as bert4keras's ``load_vocab``: token -> line index.

    A line's token is its first whitespace-separated field (the stripped line if it has
    none). Lines are split on ``\\n`` only (vocab.txt holds U+2028).
    """
    path = Path(path)
    token_dict: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                token = fields[0] if fields else line.strip()
                if token in token_dict:
                    raise UserError(f"{path}: line {lineno}: token {token!r} repeats line "
                                     f"{token_dict[token] + 1}")
                token_dict[token] = len(token_dict)
    except FileNotFoundError:
        raise FileNotFoundError(f"vocab file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    check_vocab(token_dict, path)
    return token_dict


def check_vocab(token_dict: Mapping[str, int], source: Any = "vocab") -> None:
    """ValueError unless ``token_dict`` has the special tokens and the ids 0..n-1, each once."""
    missing = [t for t in SPECIAL_TOKENS if t not in token_dict]
    if missing:
        raise UserError(f"{source}: lacks the special token(s) {', '.join(missing)}")
    ids = list(token_dict.values())
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or sorted(ids) != list(range(len(ids))):
        raise UserError(f"{source}: token ids must be the integers 0..{len(ids) - 1}, each once")


def write_vocab(token_dict: Mapping[str, int], path: str | os.PathLike) -> None:
    """Write tokens one per line in id order, durably; ``read_vocab`` reads back the same dict."""
    tokens = sorted(token_dict, key=token_dict.__getitem__)
    if [token_dict[t] for t in tokens] != list(range(len(tokens))):
        raise UserError("vocab ids must be 0..n-1 to be written as vocab.txt")
    bad = [t for t in tokens if t.split() != ([t] if t else [])]
    if bad:
        raise UserError(f"token {bad[0]!r} has whitespace; vocab.txt cannot hold it")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(t + "\n" for t in tokens)
    replace_file(tmp, path)


def source_files(vocab: str | os.PathLike) -> dict[str, Path]:
    """The files of a vocabulary given as a directory (those of :data:`FILES` it holds) or as
    a lone vocab.txt, by their names in a vocabulary directory."""
    vocab = Path(vocab)
    if vocab.is_file():
        return {VOCAB_FILE: vocab}
    if not (vocab / VOCAB_FILE).is_file():
        raise FileNotFoundError(f"no vocab.txt in {vocab} (pass a vocabulary directory or a vocab.txt)")
    return VocabDir(vocab).files()


@dataclass(frozen=True)
class Vocabulary:
    """A vocabulary directory as read: vocab.txt, and for word vocabularies the builder's extras."""

    directory: Path
    tokens: tuple[str, ...]
    sha256: str
    keep_tokens: tuple[int, ...] | None = None
    compound_tokens: tuple[tuple[int, ...], ...] | None = None

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def vocab_file(self) -> Path:
        return self.directory / VOCAB_FILE

    @property
    def tokenizer_config(self) -> Path | None:
        """tokenizer_config.json of a word vocabulary (None: char-level, Google layout)."""
        path = self.directory / CONFIG_FILE
        return path if path.is_file() else None


@dataclass(frozen=True)
class VocabDir:
    """A vocabulary directory: where its files are, reading, writing, checksums, checks."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, path: str | os.PathLike) -> VocabDir:
        """The directory ``path`` names, or the one holding the file ``path`` (a vocab.txt)."""
        path = Path(path)
        return cls(path.parent if path.is_file() else path)

    @property
    def vocab_file(self) -> Path:
        return self.path / VOCAB_FILE

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def keep_file(self) -> Path:
        return self.path / KEEP_FILE

    @property
    def compound_file(self) -> Path:
        return self.path / COMPOUND_FILE

    def files(self) -> dict[str, Path]:
        """Those of :data:`FILES` the directory holds, by name."""
        return {name: self.path / name for name in FILES if (self.path / name).is_file()}

    def sha256(self, name: str = VOCAB_FILE) -> str | None:
        """The sha256 of one of its files (None where the directory lacks it)."""
        path = self.path / name
        return sha256_file(path) if path.is_file() else None

    # reading

    def read_tokens(self) -> dict[str, int]:
        return read_vocab(self.vocab_file)

    def read_config(self) -> dict[str, Any]:
        """tokenizer_config.json, or {} where there is none; the keys wobert reads checked
        (a Hugging Face tokenizer config holds others too)."""
        config = read_json(self.config_file, "tokenizer config", default={})
        where = self.config_file
        if not isinstance(config, dict):
            raise UserError(f"{where}: a tokenizer config is a JSON object, not {type(config).__name__}")
        if config.get("level", "word") not in ("word", "char"):
            raise UserError(f"{where}: unknown level {config['level']!r} (word or char)")
        if not isinstance(config.get("do_lower_case", True), bool):
            raise UserError(f"{where}: do_lower_case must be true or false, not {config['do_lower_case']!r}")
        if not isinstance(config.get("user_words", []), list):
            raise UserError(f"{where}: user_words must be a list of words or [word, frequency] pairs")
        return config

    def read_keep_tokens(self) -> list[int] | None:
        return read_json(self.keep_file, default=None)

    def read_compound_tokens(self) -> list[list[int]] | None:
        return read_json(self.compound_file, default=None)

    def read(self) -> Vocabulary:
        """The vocabulary, checked (:meth:`validate`)."""
        if not self.vocab_file.is_file():
            raise FileNotFoundError(f"no {VOCAB_FILE} in {self.path}")
        keep, compound = self.read_keep_tokens(), self.read_compound_tokens()
        vocab = Vocabulary(
            directory=self.path,
            tokens=tuple(self.read_tokens()),
            sha256=sha256_file(self.vocab_file),
            keep_tokens=tuple(keep) if isinstance(keep, list) else keep,
            compound_tokens=(tuple(tuple(ids) if isinstance(ids, list) else ids for ids in compound)
                             if isinstance(compound, list) else compound),
        )
        self.validate(vocab)
        return vocab

    def validate(self, vocab: Vocabulary | None = None) -> None:
        """Raise ``UserError`` unless the files agree: vocab.txt holds the special tokens once
        each, keep_tokens.json is a list of ids, compound_tokens.json a list of non-empty id
        lists, and with both, kept tokens plus compounds are the tokens of vocab.txt."""
        vocab = vocab or self.read()
        keep, compound = vocab.keep_tokens, vocab.compound_tokens

        def ids(value: Any) -> bool:
            return isinstance(value, tuple) and all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)

        if keep is not None and not ids(keep):
            raise UserError(f"{self.keep_file}: not a list of token ids")
        if compound is not None and not (isinstance(compound, tuple)
                                         and all(ids(c) and c for c in compound)):
            raise UserError(f"{self.compound_file}: not a list of non-empty lists of token ids")
        if keep is not None and compound is not None and len(keep) + len(compound) != vocab.size:
            raise UserError(f"{self.path}: keep_tokens ({len(keep)}) + compound_tokens "
                            f"({len(compound)}) != {vocab.size} tokens in vocab.txt")

    # writing

    def write_tokens(self, token_dict: Mapping[str, int]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_vocab(token_dict, self.vocab_file)

    def write_config(self, config: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_file, config)

    def write_extras(self, keep_tokens: list[int] | None, compound_tokens: list[list[int]]) -> None:
        """keep_tokens.json (removed when None: the base was not a simplified vocab.txt) and
        compound_tokens.json."""
        if keep_tokens is not None:
            write_json(self.keep_file, keep_tokens, indent=None)
        else:
            self.keep_file.unlink(missing_ok=True)
        write_json(self.compound_file, compound_tokens, indent=None)

    def copy_from(self, files: Mapping[str, Path]) -> None:
        """Copy a vocabulary's files (:func:`source_files`) in, durably."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            copy_file(path, self.path / name)


def read_vocabulary(path: str | os.PathLike) -> Vocabulary:
    """Read a vocabulary directory (or the vocab.txt inside one)."""
    return VocabDir.of(path).read()
