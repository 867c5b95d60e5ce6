"""Pretraining records: corpora to masked TFRecord shards, and the ``tf.data`` reader.

Building (``build_records``, ``wobert data build``) needs no TensorFlow: forked workers
tokenize, pack, mask and write TFRecord files themselves.

- A document is one corpus line (or JSON record). It is cut after sentence ends (。！？,
  with closing quotes) and at newlines; consecutive sentences are packed greedily into
  ``[CLS] tokens [SEP]`` sequences of at most ``maxlen`` tokens. A sentence longer than
  ``maxlen - 2`` is split across sequences (at a word boundary where there is one).
  Sequences never span documents; nothing is dropped.
- Masking (``wobert.masking``): ``token`` (WoBERT) or ``wwm`` (whole words: the word
  tokenizer's pieces, or for a char tokenizer the chars of each jieba word). Static masking
  writes ``dupe_factor`` differently masked copies (copy after copy in each shard); dynamic
  masking stores the plain ids (and word starts) and masks in ``make_dataset``.
- Shards hold consecutive documents of about ``shard_chars`` characters. The random numbers
  of a shard derive from ``(seed, shard index, copy)`` only, so the output does not depend on
  ``workers``. Shards are written as ``*.tmp`` and renamed when complete; ``manifest.json``
  records each finished shard with its sha256, so a re-run skips them and an interrupted
  build resumes. A directory built with another vocabulary, input or option is refused.

Record features (int64 lists): ``token_ids`` (masked when static), ``masked_positions`` and
``masked_ids`` (static), ``word_starts`` (dynamic whole-word masking).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from wobert.checks import NON_NEGATIVE, POSITIVE, check_field_types, check_output_dir, number, output_dir
from wobert.errors import UserError
from wobert.files import replace_file
from wobert.jsonfile import read_json, write_json
from wobert.corpus import SkipLog, WorkerLost, chunked, expand_paths, iter_lines, map_ordered
from wobert.masking import MASKINGS, MaskSpec, default_max_predictions, mask_batch, random_ranges
from wobert.tokenizer import CONFIG_FILE, SPECIAL_TOKENS, VOCAB_FILE, BaseTokenizer, load_tokenizer

FORMAT = "wobert-records/1"
MANIFEST = "manifest.json"
VOCAB_SUBDIR = "vocab"
VOCAB_FILES = (VOCAB_FILE, CONFIG_FILE, "keep_tokens.json", "compound_tokens.json")
UNUSED = re.compile(r"\[unused\d+\]|<[ST]>")  # Google's placeholder tokens, never drawn as random tokens
SENTENCE = re.compile(r".*?(?:[。！？]+[”’」』）)\"']*|\n|$)", re.S)
# Options that decide the content of the shards: a directory built with others is refused.
CONTENT_KEYS = ("maxlen", "masking", "mask_rate", "max_predictions", "dynamic", "dupe_factor",
                "seed", "shard_chars", "text_field")


# ---------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------


@dataclass
class DataOptions:
    """What to build; the fields are the CLI options and the keys of a ``pretrain/data*.json``
    job (whose ``corpus`` paths start from ``--data``)."""

    corpus: list[str] = field(default_factory=list)
    vocab: str | None = None
    maxlen: int = 512
    masking: str = "token"
    mask_rate: float = 0.15
    max_predictions: int | None = None
    dynamic: bool = False
    dupe_factor: int = 1
    seed: int = 0
    shard_chars: int = 500_000
    text_field: str = "text"
    workers: int = 1
    strict: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.corpus, (str, Path)):
            self.corpus = [str(self.corpus)]
        check_field_types(self, "data options")
        if self.masking not in MASKINGS:
            raise UserError(f"masking must be one of {MASKINGS}, not {self.masking!r}")
        if self.maxlen < 3:
            raise UserError(f"maxlen must be at least 3 ([CLS] token [SEP]), not {self.maxlen}")
        if not 0 < self.mask_rate < 1:
            raise UserError(f"mask_rate must be in (0, 1), not {self.mask_rate}")
        if self.dupe_factor < 1 or self.workers < 1 or self.shard_chars < 1:
            raise UserError("dupe_factor, workers and shard_chars must be >= 1")
        if self.dynamic and self.dupe_factor != 1:
            raise UserError("dynamic masking masks anew every epoch: dupe_factor must be 1")
        if self.max_predictions is None:
            self.max_predictions = default_max_predictions(self.maxlen, self.mask_rate, self.masking)
        if self.max_predictions < 1:
            raise UserError(f"max_predictions must be >= 1, not {self.max_predictions}")

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | Path = ".", where: str = "config",
                    **overrides: Any) -> "DataOptions":
        """Options from a job config (its corpus paths relative to ``root``), then ``overrides``."""
        if not isinstance(config, dict):
            raise UserError(f"{where}: a data job config is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(config)
        if "corpus" in values:
            corpus = values["corpus"]
            values["corpus"] = [str(Path(root, p)) for p in ([corpus] if isinstance(corpus, str) else corpus)]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ---------------------------------------------------------------------------------------
# Documents to sequences
# ---------------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after 。！？ (keeping closing quotes) and at newlines; blank pieces dropped."""
    return [s for s in SENTENCE.findall(text) if s.strip()]


class WordEncoder:
    """A sentence's token ids, exactly as ``tokenizer.encode`` gives them, and its word starts.

    With ``whole_words``, the words of ``tokenizer.encode_words`` (one C call per sentence):
    a piece of the word tokenizer's cut, or for a char tokenizer a jieba word of the
    normalized text merged with WordPiece ``##`` continuations (as Chinese-BERT-wwm).
    Without it, every token is a word.
    """

    def __init__(self, tokenizer: BaseTokenizer, whole_words: bool = True) -> None:
        self.tokenizer, self.whole_words = tokenizer, whole_words

    def sentence(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids of a sentence and ``1`` where a word starts, ``0`` inside a word."""
        if self.whole_words:
            return self.tokenizer.encode_words(text)
        ids = self.tokenizer.encode(text)[0][1:-1]
        return ids, [1] * len(ids)


def _cut_point(starts: list[int], limit: int) -> int:
    """The last word start in ``(0, limit]`` (a cut that splits no word), else ``limit``."""
    for i in range(min(limit, len(starts) - 1), 0, -1):
        if starts[i]:
            return i
    return limit


def pack_sentences(
    sentences: Iterable[tuple[list[int], list[int]]], maxlen: int
) -> Iterator[tuple[list[int], list[int]]]:
    """Greedily pack ``(ids, starts)`` sentences into chunks of at most ``maxlen - 2`` tokens."""
    room = maxlen - 2
    ids: list[int] = []
    starts: list[int] = []
    for s_ids, s_starts in sentences:
        if ids and len(ids) + len(s_ids) > room:
            yield ids, starts
            ids, starts = [], []
        ids, starts = ids + s_ids, starts + s_starts
        while len(ids) > room:
            cut = _cut_point(starts, room)
            yield ids[:cut], starts[:cut]
            ids, starts = ids[cut:], starts[cut:]
    if ids:
        yield ids, starts


def document_sequences(encoder: WordEncoder, text: str, maxlen: int) -> list[tuple[list[int], list[int]]]:
    """The ``[CLS] ... [SEP]`` sequences of one document, with their word starts."""
    cls, sep = encoder.tokenizer.cls_id, encoder.tokenizer.sep_id
    sentences = map(encoder.sentence, split_sentences(text))
    return [([cls] + ids + [sep], [1] + starts + [1]) for ids, starts in pack_sentences(sentences, maxlen)]


# ---------------------------------------------------------------------------------------
# TFRecord files without TensorFlow
# ---------------------------------------------------------------------------------------


def _crc_byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


class Crc32c:
    """CRC-32C (Castagnoli) in NumPy, by linearity: the CRC is the XOR of each byte's
    contribution at its distance from the end, plus that of the initial value."""

    BYTE = _crc_byte_table()

    def __init__(self) -> None:
        self.tail = self.BYTE[None, :]  # tail[p, v]: byte v followed by p zero bytes
        self.init = np.array([0xFFFFFFFF], np.uint32)  # init[n]: 0xFFFFFFFF after n zero bytes

    def _grow(self, n: int) -> None:
        rows, inits = [self.tail[-1]], [self.init[-1]]
        for _ in range(len(self.tail), max(n, 2 * len(self.tail))):
            rows.append(self.BYTE[rows[-1] & 0xFF] ^ (rows[-1] >> 8))
            inits.append(self.BYTE[inits[-1] & 0xFF] ^ (inits[-1] >> 8))
        self.tail = np.vstack([self.tail, np.array(rows[1:])])
        self.init = np.concatenate([self.init, np.array(inits[1:], np.uint32)])

    def __call__(self, data: bytes) -> int:
        n = len(data)
        if n >= len(self.tail):
            self._grow(n + 1)
        values = np.frombuffer(data, np.uint8)
        crc = np.bitwise_xor.reduce(self.tail[np.arange(n - 1, -1, -1), values]) if n else 0
        return int(crc ^ self.init[n] ^ 0xFFFFFFFF)

    def masked(self, data: bytes) -> int:
        """The masked CRC that TFRecord files store."""
        crc = self(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Varints:
    """Protobuf varints of the non-negative ints below ``size`` from a table (fast in pure
    Python), and ``tf.train.Example`` messages of int64 lists built from them."""

    def __init__(self, size: int) -> None:
        self.table = [self.encode(i) for i in range(size)]

    @staticmethod
    def encode(value: int) -> bytes:
        out = bytearray()
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
        return bytes(out)

    def field(self, tag: bytes, payload: bytes) -> bytes:
        """A length-delimited protobuf field (``tag`` is its key byte)."""
        n = len(payload)
        return tag + (self.table[n] if n < len(self.table) else self.encode(n)) + payload

    def example(self, features: dict[str, Sequence[int]]) -> bytes:
        """``{name: int list}`` (ints below ``size``) serialized as a ``tf.train.Example``:
        Example.features > Features.feature map entry (key, value) > Feature.int64_list >
        Int64List.value (packed)."""
        f, table = self.field, self.table
        entries = []
        for name, values in features.items():
            int64_list = f(b"\x0a", b"".join(map(table.__getitem__, values)))
            entries.append(f(b"\x0a", f(b"\x0a", name.encode()) + f(b"\x12", f(b"\x1a", int64_list))))
        return f(b"\x0a", b"".join(entries))


class RecordWriter:
    """Writes ``tf.train.Example`` records of int64 features to a TFRecord file, atomically:
    the data goes to ``PATH.tmp``, which ``close()`` renames to ``PATH``."""

    def __init__(self, path: Path, varints: Varints, crc: Crc32c) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.varints, self.crc = varints, crc
        self.file = open(self.tmp, "wb")
        self.sha256 = hashlib.sha256()

    def write(self, features: dict[str, Sequence[int]]) -> None:
        data = self.varints.example(features)
        header = struct.pack("<Q", len(data))
        record = (header + struct.pack("<I", self.crc.masked(header)) + data
                  + struct.pack("<I", self.crc.masked(data)))
        self.file.write(record)
        self.sha256.update(record)

    def close(self) -> str:
        """Finish the file (fsync + rename); returns its sha256."""
        self.file.close()
        replace_file(self.tmp, self.path)
        return self.sha256.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_name(index: int) -> str:
    """``shard-00007.tfrecord`` for index 7."""
    return f"shard-{index:05d}.tfrecord"


# ---------------------------------------------------------------------------------------
# Building shards (in worker processes)
# ---------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(encoder: WordEncoder, options: DataOptions, spec: MaskSpec, out: Path) -> None:
    _WORKER.update(encoder=encoder, options=options, spec=spec, out=out, crc=Crc32c(),
                   varints=Varints(max(encoder.tokenizer.vocab_size, options.maxlen) + 1))


def _records(sequences: list[tuple[list[int], list[int]]], options: DataOptions, spec: MaskSpec,
             rng: np.random.Generator, block: int = 1024) -> Iterator[dict[str, list[int]]]:
    """The records of one copy of ``sequences``: masked in blocks (static) or plain (dynamic)."""
    if options.dynamic:
        for ids, starts in sequences:
            yield {"token_ids": ids, "word_starts": starts} if spec.whole_word else {"token_ids": ids}
        return
    for first in range(0, len(sequences), block):
        chunk = sequences[first:first + block]
        lengths = np.array([len(ids) for ids, _ in chunk])
        ids, starts = (np.zeros((len(chunk), lengths.max()), np.int32) for _ in range(2))
        for row, (seq_ids, seq_starts) in enumerate(chunk):
            ids[row, :len(seq_ids)], starts[row, :len(seq_starts)] = seq_ids, seq_starts
        masked = mask_batch(ids, starts, lengths, spec, rng)
        counts = masked.masked_weights.sum(1).astype(int)
        for row, (n, k) in enumerate(zip(lengths, counts)):
            yield {"token_ids": masked.token_ids[row, :n].tolist(),
                   "masked_positions": masked.masked_positions[row, :k].tolist(),
                   "masked_ids": masked.masked_ids[row, :k].tolist()}


def build_shard(job: tuple[int, list[str]]) -> dict[str, Any]:
    """Tokenize, pack, mask and write the documents of one shard; returns its manifest entry.

    Copy ``c`` of the shard is masked with the random generator seeded ``(seed, index, c)``."""
    index, documents = job
    encoder, options, spec = _WORKER["encoder"], _WORKER["options"], _WORKER["spec"]
    sequences = [seq for doc in documents for seq in document_sequences(encoder, doc, options.maxlen)]
    writer = RecordWriter(_WORKER["out"] / shard_name(index), _WORKER["varints"], _WORKER["crc"])
    predictions = 0
    for copy in range(options.dupe_factor):
        rng = np.random.default_rng([options.seed, index, copy])
        for record in _records(sequences, options, spec, rng):
            predictions += len(record.get("masked_ids", ()))
            writer.write(record)
    sha256 = writer.close()
    return {"file": shard_name(index), "sha256": sha256, "bytes": writer.path.stat().st_size,
            "documents": len(documents),
            "characters": sum(map(len, documents)), "sequences": len(sequences) * options.dupe_factor,
            "tokens": sum(len(ids) for ids, _ in sequences) * options.dupe_factor,
            "predictions": predictions}


# ---------------------------------------------------------------------------------------
# Building a directory
# ---------------------------------------------------------------------------------------


def _vocab_files(vocab: Path) -> dict[str, Path]:
    """The vocabulary files to fingerprint and copy: a directory's, or a lone vocab.txt."""
    if vocab.is_file():
        return {VOCAB_FILE: vocab}
    if not (vocab / VOCAB_FILE).is_file():
        raise FileNotFoundError(f"no vocab.txt in {vocab} (pass a vocabulary directory or a vocab.txt)")
    return {name: vocab / name for name in VOCAB_FILES if (vocab / name).is_file()}


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a records directory (clear error when absent or broken)."""
    path = Path(data_dir) / MANIFEST
    manifest = read_json(path, MANIFEST, hint=": build the records first (wobert data build)")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a wobert records manifest ({FORMAT})")
    return manifest


def count_records(path: Path) -> int:
    """The records of a TFRecord file, by walking its length headers; a file that does not end
    at a record boundary raises ``UserError``."""
    count, at, size = 0, 0, path.stat().st_size
    with open(path, "rb") as f:
        while at < size:
            header = f.read(12)  # length (8 bytes) and its CRC
            if len(header) < 12 or at + 16 + struct.unpack("<Q", header[:8])[0] > size:
                raise UserError(f"{path}: cut short inside record {count + 1} (at byte {at:,})")
            at += 16 + struct.unpack("<Q", header[:8])[0]
            f.seek(at)
            count += 1
    return count


def damaged_shards(data_dir: str | Path, manifest: dict[str, Any], *, full: bool = False) -> list[str]:
    """What is wrong with the shards ``manifest`` lists: a missing file, another size than it
    records (cheap: one stat each), and with ``full`` another sha256 or record count."""
    problems = []
    for shard in manifest.get("shards", []):
        name, path = shard["file"], Path(data_dir) / shard["file"]
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif "bytes" in shard and path.stat().st_size != shard["bytes"]:
            problems.append(f"{name} has {path.stat().st_size:,} bytes, the manifest {shard['bytes']:,}")
        elif full and sha256_file(path) != shard["sha256"]:
            problems.append(f"{name} differs from its sha256 in the manifest")
        elif full and count_records(path) != shard["sequences"]:
            problems.append(f"{name} holds {count_records(path):,} records, the manifest {shard['sequences']:,}")
    return problems


def check_records(data_dir: str | Path, manifest: dict[str, Any], *, full: bool = False) -> None:
    """Raise ``UserError`` naming the damaged shards (see :func:`damaged_shards`)."""
    problems = damaged_shards(data_dir, manifest, full=full)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UserError(f"{data_dir}: damaged records: {shown}. The same `wobert data build` command "
                        "rebuilds the damaged shards (and only them)")


def _fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must match for a directory to be resumed: options, inputs, vocabulary."""
    keys = CONTENT_KEYS + ("vocab_sha256", "tokenizer_sha256")
    found = {k: manifest.get(k) for k in keys}
    found["inputs"] = [(i["sha256"], i["bytes"]) for i in manifest.get("inputs", [])]
    return found


def _check_resumable(out: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished shards of an earlier build with the same fingerprint (verified by sha256);
    raises ``UserError`` if ``out`` holds anything else."""
    if not (out / MANIFEST).exists():
        if any(out.glob("shard-*.tfrecord")):
            raise UserError(f"{out} holds shards but no {MANIFEST}: choose another --out or empty it")
        return {}
    old = read_manifest(out)
    before, now = _fingerprint(old), _fingerprint(manifest)
    changed = [k for k in now if before[k] != now[k]]
    if changed:
        named = {"vocab_sha256": "another vocab.txt", "tokenizer_sha256": "another tokenizer_config.json",
                 "inputs": "other corpus files"}
        details = ", ".join(named.get(k) or f"{k} {before[k]!r} -> {now[k]!r}" for k in changed)
        raise UserError(f"{out} holds records built differently ({details}); "
                        "choose another --out or delete it to rebuild")
    done = {}
    for shard in old.get("shards", []):
        path = out / shard["file"]
        if path.is_file() and sha256_file(path) == shard["sha256"]:
            done[shard["file"]] = shard
    return done


def _mask_spec(tokenizer: BaseTokenizer, options: DataOptions) -> MaskSpec:
    """Masking for this vocabulary: random replacements never draw specials or [unusedN]."""
    never = {i for t, i in tokenizer.token_dict.items() if t in SPECIAL_TOKENS or UNUSED.fullmatch(t)}
    return MaskSpec(tokenizer.mask_id, random_ranges(tokenizer.token_dict.values(), never),
                    options.mask_rate, options.max_predictions, options.masking == "wwm")


def _new_manifest(options: DataOptions, tokenizer: BaseTokenizer, spec: MaskSpec, files: list[Path],
                  vocab_files: dict[str, Path], out: Path) -> dict[str, Any]:
    """The manifest of a build before any shard: options, vocabulary and inputs (checksums)."""
    config = {k: v for k, v in asdict(options).items() if k in CONTENT_KEYS}
    tokenizer_config = vocab_files.get(CONFIG_FILE)
    return {
        "format": FORMAT, "complete": False, **config,
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": sha256_file(vocab_files[VOCAB_FILE]),
        "tokenizer_sha256": sha256_file(tokenizer_config) if tokenizer_config else None,
        "tokenizer": tokenizer.level,
        "vocab_dir": str((out / VOCAB_SUBDIR).resolve()),
        "vocab_source": str(options.vocab),
        "special_ids": {t.strip("[]").lower(): tokenizer.token_dict[t] for t in SPECIAL_TOKENS},
        "random_ranges": [list(r) for r in spec.random_ranges],
        "inputs": [{"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files],
        "shards": [],
    }


def _set_shards(manifest: dict[str, Any], shards: dict[str, dict[str, Any]], complete: bool) -> None:
    manifest["shards"] = sorted(shards.values(), key=lambda s: s["file"])
    if complete:
        for key in ("documents", "sequences", "tokens", "predictions"):
            manifest[key] = sum(s[key] for s in manifest["shards"])
        manifest["complete"] = True


def build_records(options: DataOptions, out: str | Path, *, progress: bool | None = None) -> dict[str, Any]:
    """Build (or resume) the shards of ``options.corpus`` in ``out``; returns the manifest.

    ``options.vocab`` is a vocabulary directory (``wobert vocab``: word tokenizer) or a BERT
    ``vocab.txt`` or directory without ``tokenizer_config.json`` (char tokenizer).
    ``progress=None`` shows the bar only on a terminal.
    """
    out = check_output_dir(out)
    if not options.corpus or not options.vocab:
        raise UserError("a corpus and a vocabulary are needed (--corpus PATH ..., --vocab DIR)")
    files = expand_paths(options.corpus)
    if not files:
        raise UserError(f"no corpus files in {' '.join(options.corpus)}")
    vocab_files = _vocab_files(Path(options.vocab))
    tokenizer = load_tokenizer(options.vocab)
    spec = _mask_spec(tokenizer, options)
    manifest = _new_manifest(options, tokenizer, spec, files, vocab_files, out)
    out.mkdir(parents=True, exist_ok=True)
    shards = _check_resumable(out, manifest)
    for tmp in out.glob("*.tmp"):
        tmp.unlink()
    (out / VOCAB_SUBDIR).mkdir(exist_ok=True)
    for name, path in vocab_files.items():
        shutil.copyfile(path, out / VOCAB_SUBDIR / name)
    _set_shards(manifest, shards, complete=False)
    write_json(out / MANIFEST, manifest)

    skips = SkipLog()
    lines = iter_lines(files, strict=options.strict, skips=skips, text_field=options.text_field)
    documents = chunked((line.text for line in lines), options.shard_chars, len)
    todo = ((i, docs) for i, docs in enumerate(documents) if shard_name(i) not in shards)
    encoder = WordEncoder(tokenizer, whole_words=options.masking == "wwm")
    encoder.sentence("预热分词器")  # load the segmenter once, before the workers fork
    start, tokens = time.perf_counter(), 0
    with tqdm(desc="records", unit=" docs", disable=None if progress is None else not progress) as bar:
        try:
            for shard in map_ordered(build_shard, todo, workers=options.workers, initializer=_init_worker,
                                     initargs=(encoder, options, spec, out)):
                shards[shard["file"]] = shard
                _set_shards(manifest, shards, complete=False)
                write_json(out / MANIFEST, manifest)
                tokens += shard["tokens"]
                bar.update(shard["documents"])
                bar.set_postfix_str(f"{tokens / (time.perf_counter() - start):,.0f} tokens/s", refresh=False)
        except WorkerLost as err:
            raise WorkerLost(f"{err}: the {len(shards)} finished shards in {out} are kept, run the same "
                             "command again to build the rest") from None
    if not shards:
        raise UserError(f"the corpus holds no text ({' '.join(options.corpus)}: {skips.summary()}): "
                        "no records were built")
    manifest["skipped"] = skips.to_dict()
    manifest["skipped_summary"] = skips.summary()
    _set_shards(manifest, shards, complete=True)
    write_json(out / MANIFEST, manifest)
    return manifest


# ---------------------------------------------------------------------------------------
# Reading: tf.data
# ---------------------------------------------------------------------------------------


def mask_spec(manifest: dict[str, Any]) -> MaskSpec:
    """The masking a records directory was built with (used for dynamic masking)."""
    return MaskSpec(manifest["special_ids"]["mask"], tuple(map(tuple, manifest["random_ranges"])),
                    manifest["mask_rate"], manifest["max_predictions"], manifest["masking"] == "wwm")


def _stored(manifest: dict[str, Any]) -> list[str]:
    """The features a record holds besides ``token_ids``."""
    if manifest["dynamic"]:
        return ["word_starts"] if manifest["masking"] == "wwm" else []
    return ["masked_positions", "masked_ids"]


def _parse_batch(manifest: dict[str, Any]) -> Any:
    """Serialized records [B] -> padded int32 features and ``length`` [B], in one op."""
    from wobert.backend import tf

    names, P, pad = _stored(manifest), manifest["max_predictions"], manifest["special_ids"]["pad"]
    features = {name: tf.io.RaggedFeature(tf.int64) for name in ["token_ids"] + names}

    def parse(records: Any) -> dict[str, Any]:
        x = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_example(records, features).items()}
        out = {"token_ids": x["token_ids"].to_tensor(pad), "length": x["token_ids"].row_lengths()}
        for name in names:
            out[name] = x[name].to_tensor(0, shape=[None, None if name == "word_starts" else P])
        return out

    return parse


def _parse_one(manifest: dict[str, Any]) -> Any:
    """A serialized record -> its int32 features and ``length`` (for bucketing)."""
    from wobert.backend import tf

    features = {name: tf.io.RaggedFeature(tf.int64) for name in ["token_ids"] + _stored(manifest)}

    def parse(record: Any) -> dict[str, Any]:
        x = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, features).items()}
        return {**x, "length": tf.shape(x["token_ids"])[0]}

    return parse


def _features(manifest: dict[str, Any], seed: int, pipelines: int, pipeline: int,
              parse: Callable[[Any], dict[str, Any]] | None = None) -> Callable[[Any, Any], dict[str, Any]]:
    """``(batch index, padded batch)`` -> the model's features (``parse`` first, if given).
    Dynamic masks are seeded by ``seed`` and the batch's index across all ``pipelines``."""
    from wobert.backend import tf
    from wobert.masking import mask_batch_tf

    spec = mask_spec(manifest)

    def features(index: Any, x: Any) -> dict[str, Any]:
        x = parse(x) if parse else x
        if manifest["dynamic"]:
            seeds = tf.stack([tf.constant(seed, tf.int64), index * pipelines + pipeline])
            out = mask_batch_tf(x["token_ids"], x.get("word_starts"), x["length"], spec, seeds)
        else:
            out = {k: x[k] for k in ("token_ids", "masked_positions", "masked_ids")}
            out["masked_weights"] = tf.cast(x["masked_positions"] > 0, tf.float32)  # position 0 is [CLS]
        return {**out, "segment_ids": tf.zeros_like(out["token_ids"])}

    return features


def _record_stream(files: list[str], shuffle: bool, seed: int, repeat: bool, pipelines: int,
                   pipeline: int, shuffle_buffer: int) -> Any:
    """The serialized records of this input pipeline: its shards (or, with fewer shards than
    pipelines, its share of the records), interleaved and shuffled when ``shuffle``."""
    from wobert.backend import tf

    ds = tf.data.Dataset.from_tensor_slices(files)
    by_file = len(files) >= pipelines
    if by_file:
        ds = ds.shard(pipelines, pipeline)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 16) if shuffle else 1,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not by_file:
        ds = ds.shard(pipelines, pipeline)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    return ds


def _bucket_batches(ds: Any, manifest: dict[str, Any], batch_size: int, buckets: Sequence[int],
                    drop_remainder: bool) -> Any:
    """Parsed records batched by length, each batch padded to its bucket (``maxlen`` is the last)."""
    from wobert.backend import tf

    P = manifest["max_predictions"]
    shapes = {"token_ids": [None], "length": [],
              **{k: [None if k == "word_starts" else P] for k in _stored(manifest)}}
    pads = {k: tf.constant(manifest["special_ids"]["pad"] if k == "token_ids" else 0, tf.int32) for k in shapes}
    bounds = sorted({int(b) for b in buckets if 0 < int(b) < manifest["maxlen"]} | {manifest["maxlen"]})
    ds = ds.map(_parse_one(manifest), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.bucket_by_sequence_length(
        lambda x: x["length"], [b + 1 for b in bounds], [batch_size] * (len(bounds) + 1),
        padded_shapes=shapes, padding_values=pads, pad_to_bucket_boundary=True, drop_remainder=drop_remainder)


def make_dataset(
    data_dir: str | Path,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    input_context: Any = None,
    buckets: Sequence[int] | None = None,
    skip_batches: int = 0,
    shuffle_buffer: int = 10_000,
    drop_remainder: bool = False,
) -> Any:
    """Batches of masked sequences from a records directory, as a ``tf.data.Dataset`` of dicts:

    ``token_ids``, ``segment_ids`` (int32 [B, L]), ``masked_positions``, ``masked_ids``
    (int32 [B, P]) and ``masked_weights`` (float32 [B, P], 0.0 on padding), where L is the
    batch's longest sequence (or, with ``buckets`` such as ``[64, 128, 512]``, the bucket that
    fits it; ``maxlen`` is added as the last bucket) and P the manifest's ``max_predictions``.
    Without buckets, whole batches are parsed at once (several times faster).

    - ``batch_size`` is what each batch of *this* pipeline holds: under ``tf.distribute``,
      call it from ``strategy.distribute_datasets_from_function(fn)`` with
      ``input_context.get_per_replica_batch_size(global_batch)`` and pass ``input_context``;
      pipelines then read disjoint shards (or records, if there are fewer shards).
    - Without ``shuffle``, records come in the order of the shards (the corpus order).
      With ``shuffle``, shard order and a ``shuffle_buffer`` of records are shuffled with
      ``seed`` (anew each epoch); dynamic masks derive from ``seed`` and the batch's position
      in the stream (different every epoch). The batches are a pure function of ``seed``: to
      resume training exactly, count the batches this pipeline yielded and pass them as
      ``skip_batches`` with the same ``seed`` (without buckets they are skipped before
      parsing and masking, so this is cheap).
    - The shards are first checked against the manifest (missing, or of another size: a
      ``UserError`` naming them); TensorFlow checks each record's CRC as it reads it (a
      damaged one raises ``DataLossError``; ``check_records(..., full=True)`` names the shard).
    """
    from wobert.backend import tf

    manifest = read_manifest(data_dir)
    files = [str(Path(data_dir) / s["file"]) for s in manifest["shards"]]
    if not manifest.get("complete") or not files:
        raise UserError(f"{data_dir}: the records are incomplete; re-run `wobert data build` to finish them")
    check_records(data_dir, manifest)
    pipelines, pipeline = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                           if input_context is not None else (1, 0))
    ds = _record_stream(files, shuffle, seed, repeat, pipelines, pipeline, shuffle_buffer)
    if buckets:
        ds, parse = _bucket_batches(ds, manifest, batch_size, buckets, drop_remainder), None
    else:
        ds, parse = ds.batch(batch_size, drop_remainder=drop_remainder), _parse_batch(manifest)
    features = _features(manifest, seed, pipelines, pipeline, parse)
    ds = ds.enumerate().skip(skip_batches).map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_cli(parser: argparse.ArgumentParser) -> None:
    """``wobert data build``: options; each overrides the same key of ``--config``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "build", help="turn corpora into masked TFRecord shards",
        description="Tokenize, pack and mask corpora into DIR/shard-*.tfrecord and DIR/manifest.json. "
        "Re-running with the same options skips finished shards (an interrupted build resumes).",
    )
    d = DataOptions
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    p.add_argument("--config", help="a pretrain/data*.json job; options given here override its keys")
    p.add_argument("--data", default=".", help="directory the config's corpus paths start from (default: .)")
    p.add_argument("--corpus", nargs="+", metavar="PATH", help="text, JSONL (text field) or .gz files, or directories")
    p.add_argument("--vocab", help="vocabulary directory from `wobert vocab build` (word tokenizer), or a "
                   "BERT vocab.txt / model directory (char tokenizer)")
    p.add_argument("--maxlen", type=number(int, 3), help=f"tokens per sequence, [CLS] and [SEP] included (default: {d.maxlen})")
    p.add_argument("--masking", choices=MASKINGS,
                   help=f"token: each token alone (WoBERT); wwm: whole words (default: {d.masking})")
    p.add_argument("--mask-rate", type=number(float, 0, 1, above=True, below=True), help=f"share of tokens to predict (default: {d.mask_rate})")
    p.add_argument("--max-predictions", type=POSITIVE,
                   help="most predicted tokens per sequence (default: ceil(maxlen * mask_rate), +3 for wwm)")
    p.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=None,
                   help="store plain sequences and mask at train time, anew each epoch (default: static)")
    p.add_argument("--dupe-factor", type=POSITIVE, help=f"differently masked copies, static masking (default: {d.dupe_factor})")
    p.add_argument("--seed", type=NON_NEGATIVE, help=f"random seed of the masks (default: {d.seed})")
    p.add_argument("--shard-chars", type=POSITIVE, help=f"characters of text per shard (default: {d.shard_chars})")
    p.add_argument("--text-field", help=f"JSON field holding the text (default: {d.text_field})")
    p.add_argument("--workers", type=POSITIVE, help=f"processes (default: {os.cpu_count() or 1}); "
                   "the output does not depend on it")
    p.add_argument("--strict", action="store_const", const=True,
                   help="fail on a non-UTF-8 or malformed line instead of skipping and counting it")
    v = actions.add_parser(
        "verify", help="check every shard against the manifest",
        description="Check that DIR holds complete records whose every shard has the size, sha256 "
        "and record count the manifest records, and that DIR/vocab is the vocabulary they were "
        "built with. Reads every byte once.")
    v.add_argument("dir", metavar="DIR", help="records directory (manifest.json, shard-*.tfrecord)")


def verify_records(data_dir: str | Path) -> dict[str, Any]:
    """Check everything (see ``wobert data verify``); returns the manifest, raises ``UserError``."""
    manifest = read_manifest(data_dir)
    if not manifest.get("complete"):
        raise UserError(f"{data_dir}: the records are incomplete; re-run `wobert data build` to finish them")
    check_records(data_dir, manifest, full=True)
    vocab = Path(data_dir) / VOCAB_SUBDIR / VOCAB_FILE
    if vocab.is_file() and sha256_file(vocab) != manifest["vocab_sha256"]:
        raise UserError(f"{vocab} is not the vocabulary the records were built with (sha256 differs)")
    return manifest


def options_from_args(args: argparse.Namespace) -> DataOptions:
    """The options of ``--config`` (if any) with those given on the command line on top."""
    config: dict[str, Any] = {"workers": os.cpu_count() or 1}
    if args.config:
        config.update(read_json(args.config, "data job config"))
    overrides = {f.name: getattr(args, f.name, None) for f in fields(DataOptions)}
    return DataOptions.from_config(config, args.data, args.config or "options", **overrides)


def run_cli(args: argparse.Namespace) -> int:
    if args.action == "verify":
        manifest = verify_records(args.dir)
        print(f"{args.dir}: {len(manifest['shards'])} shards, {manifest['sequences']:,} sequences: "
              "sizes, sha256 and record counts match the manifest")
        return 0
    options = options_from_args(args)
    manifest = build_records(options, args.out)
    print(f"{args.out}: {len(manifest['shards'])} shards, {manifest['documents']:,} documents, "
          f"{manifest['sequences']:,} sequences, {manifest['tokens']:,} tokens "
          f"({manifest['masking']} masking, {'dynamic' if manifest['dynamic'] else 'static'})")
    print(manifest["skipped_summary"])
    return 0
