"""Pretraining records: corpora to masked TFRecord shards (``wobert data build``, ``verify``).

Building (``build_records``) needs no TensorFlow: forked workers tokenize, pack
(``wobert.packing``), mask and write TFRecord files (``wobert.tfrecord``) themselves; the
``tf.data`` reader is ``wobert.dataset.make_dataset``.

- A document is one corpus line (or JSON record), cut into sentences and packed into
  ``[CLS] tokens [SEP]`` sequences of at most ``maxlen`` tokens; nothing is dropped.
- Masking (``wobert.masking``): ``token`` (WoBERT) or ``wwm`` (whole words: the word
  tokenizer's pieces, or for a char tokenizer the chars of each jieba word). Static masking
  writes ``dupe_factor`` differently masked copies (copy after copy in each shard); dynamic
  masking stores the plain ids (and word starts) and masks in ``make_dataset``.
- Shards hold consecutive documents of about ``shard_chars`` characters. The random numbers
  of a shard derive from ``(seed, shard index, copy)`` only, so the output does not depend on
  ``workers``. Shards are written as ``*.tmp`` and renamed when complete; ``manifest.json``
  (``wobert.manifest``) records each finished shard with its sha256, so a re-run skips them
  and an interrupted build resumes. A directory built with another vocabulary, input or
  option is refused. ``DIR/vocab`` keeps a copy of the vocabulary directory.

Record features (int64 lists): ``token_ids`` (masked when static), ``masked_positions`` and
``masked_ids`` (static), ``word_starts`` (dynamic whole-word masking).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from wobert.checks import NON_NEGATIVE, POSITIVE, check_field_types, check_output_dir, number, output_dir
from wobert.config import Job, given, load_job
from wobert.corpus import SkipLog, WorkerLost, chunked, expand_paths, iter_lines, map_ordered
from wobert.errors import UserError
from wobert.files import sha256_file
from wobert.manifest import CONTENT_KEYS, MANIFEST, VOCAB_SUBDIR, InputFile, Manifest, Shard, check_records
from wobert.masking import MASKINGS, MaskSpec, default_max_predictions, mask_batch, random_ranges
from wobert.packing import WordEncoder, document_sequences
from wobert.tfrecord import Crc32c, RecordWriter, Varints
from wobert.tokenizer import SPECIAL_TOKENS, BaseTokenizer, load_tokenizer
from wobert.vocabdir import CONFIG_FILE, VOCAB_FILE, VocabDir, source_files

log = logging.getLogger(__name__)

UNUSED = re.compile(r"\[unused\d+\]|<[ST]>")  # Google's placeholder tokens, never drawn as random tokens


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
    def from_config(cls, config: Job | None = None, root: str | Path = ".", *,
                    base: Mapping[str, Any] | None = None, **overrides: Any) -> DataOptions:
        """Options from ``base``, then a job config (a ``pretrain/data*.json`` file or its
        mapping; its corpus paths start from ``root``), then the ``overrides`` that are not None."""
        return load_job(cls, config, what="data", root=root, paths=("corpus",), base=base,
                        overrides=overrides)


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


def build_shard(job: tuple[int, list[str]]) -> Shard:
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
    return Shard(file=shard_name(index), sha256=sha256, bytes=writer.path.stat().st_size,
                 documents=len(documents), characters=sum(map(len, documents)),
                 sequences=len(sequences) * options.dupe_factor,
                 tokens=sum(len(ids) for ids, _ in sequences) * options.dupe_factor,
                 predictions=predictions)


# ---------------------------------------------------------------------------------------
# Building a directory
# ---------------------------------------------------------------------------------------


def _check_resumable(out: Path, manifest: Manifest) -> dict[str, Shard]:
    """Finished shards of an earlier build with the same fingerprint (verified by sha256);
    raises ``UserError`` if ``out`` holds anything else."""
    if not (out / MANIFEST).exists():
        if any(out.glob("shard-*.tfrecord")):
            raise UserError(f"{out} holds shards but no {MANIFEST}: choose another --out or empty it")
        return {}
    old = Manifest.read(out)
    changed = manifest.differences(old)
    if changed:
        raise UserError(f"{out} holds records built differently ({', '.join(changed)}); "
                        "choose another --out or delete it to rebuild")
    done = {}
    for shard in old.shards:
        path = out / shard.file
        if path.is_file() and sha256_file(path) == shard.sha256:
            done[shard.file] = shard
    return done


def _mask_spec(tokenizer: BaseTokenizer, options: DataOptions) -> MaskSpec:
    """Masking for this vocabulary: random replacements never draw specials or [unusedN]."""
    never = {i for t, i in tokenizer.token_dict.items() if t in SPECIAL_TOKENS or UNUSED.fullmatch(t)}
    return MaskSpec(tokenizer.mask_id, random_ranges(tokenizer.token_dict.values(), never),
                    options.mask_rate, options.max_predictions, options.masking == "wwm")


def _new_manifest(options: DataOptions, tokenizer: BaseTokenizer, spec: MaskSpec, files: list[Path],
                  vocab_files: dict[str, Path], out: Path) -> Manifest:
    """The manifest of a build before any shard: options, vocabulary and inputs (checksums)."""
    config = {k: v for k, v in asdict(options).items() if k in CONTENT_KEYS}
    tokenizer_config = vocab_files.get(CONFIG_FILE)
    return Manifest(
        **config,
        vocab_size=tokenizer.vocab_size,
        vocab_sha256=sha256_file(vocab_files[VOCAB_FILE]),
        tokenizer_sha256=sha256_file(tokenizer_config) if tokenizer_config else None,
        tokenizer=tokenizer.level,
        vocab_dir=str((out / VOCAB_SUBDIR).resolve()),
        vocab_source=str(options.vocab),
        special_ids={t.strip("[]").lower(): tokenizer.token_dict[t] for t in SPECIAL_TOKENS},
        random_ranges=[list(r) for r in spec.random_ranges],
        inputs=[InputFile.of(f) for f in files],
    )


def build_records(options: DataOptions, out: str | Path, *, progress: bool | None = None) -> Manifest:
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
    vocab_files = source_files(options.vocab)
    tokenizer = load_tokenizer(options.vocab)
    spec = _mask_spec(tokenizer, options)
    manifest = _new_manifest(options, tokenizer, spec, files, vocab_files, out)
    out.mkdir(parents=True, exist_ok=True)
    shards = _check_resumable(out, manifest)
    for tmp in out.glob("*.tmp"):
        tmp.unlink()
    VocabDir(out / VOCAB_SUBDIR).copy_from(vocab_files)
    manifest.set_shards(shards, complete=False)
    manifest.write(out)

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
                shards[shard.file] = shard
                manifest.set_shards(shards, complete=False)
                manifest.write(out)
                tokens += shard.tokens
                bar.update(shard.documents)
                bar.set_postfix_str(f"{tokens / (time.perf_counter() - start):,.0f} tokens/s", refresh=False)
        except WorkerLost as err:
            raise WorkerLost(f"{err}: the {len(shards)} finished shards in {out} are kept, run the same "
                             "command again to build the rest") from None
    if not shards:
        raise UserError(f"the corpus holds no text ({' '.join(options.corpus)}: {skips.summary()}): "
                        "no records were built")
    manifest.skipped, manifest.skipped_summary = skips.to_dict(), skips.summary()
    manifest.set_shards(shards, complete=True)
    manifest.write(out)
    return manifest


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
    p.add_argument("--maxlen", type=number(int, 3),
                   help=f"tokens per sequence, [CLS] and [SEP] included (default: {d.maxlen})")
    p.add_argument("--masking", choices=MASKINGS,
                   help=f"token: each token alone (WoBERT); wwm: whole words (default: {d.masking})")
    p.add_argument("--mask-rate", type=number(float, 0, 1, above=True, below=True),
                   help=f"share of tokens to predict (default: {d.mask_rate})")
    p.add_argument("--max-predictions", type=POSITIVE,
                   help="most predicted tokens per sequence (default: ceil(maxlen * mask_rate), +3 for wwm)")
    p.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=None,
                   help="store plain sequences and mask at train time, anew each epoch (default: static)")
    p.add_argument("--dupe-factor", type=POSITIVE,
                   help=f"differently masked copies, static masking (default: {d.dupe_factor})")
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


def verify_records(data_dir: str | Path) -> Manifest:
    """Check everything (see ``wobert data verify``); returns the manifest, raises ``UserError``."""
    manifest = Manifest.read(data_dir)
    if not manifest.complete:
        raise UserError(f"{data_dir}: the records are incomplete; re-run `wobert data build` to finish them")
    check_records(data_dir, manifest, full=True)
    vocab = VocabDir(Path(data_dir) / VOCAB_SUBDIR)
    if not vocab.vocab_file.is_file():
        log.warning("%s is missing: pretraining will read --vocab, else %s (either checked against the "
                    "records' sha256)", vocab.vocab_file, manifest.vocab_dir)
        return manifest
    if vocab.sha256() != manifest.vocab_sha256:
        raise UserError(f"{vocab.vocab_file} is not the vocabulary the records were built with (sha256 differs)")
    vocab.validate()
    return manifest


def options_from_args(args: argparse.Namespace) -> DataOptions:
    """The options of ``--config`` (if any) with those given on the command line on top."""
    return DataOptions.from_config(args.config, args.data, base={"workers": os.cpu_count() or 1},
                                   **given(args, DataOptions))


def run_cli(args: argparse.Namespace) -> int:
    if args.action == "verify":
        manifest = verify_records(args.dir)
        print(f"{args.dir}: {len(manifest.shards)} shards, {manifest.sequences:,} sequences: "
              "sizes, sha256 and record counts match the manifest")
        return 0
    options = options_from_args(args)
    manifest = build_records(options, args.out)
    print(f"{args.out}: {len(manifest.shards)} shards, {manifest.documents:,} documents, "
          f"{manifest.sequences:,} sequences, {manifest.tokens:,} tokens "
          f"({manifest.masking} masking, {'dynamic' if manifest.dynamic else 'static'})")
    print(manifest.skipped_summary)
    return 0
