"""TFRecord building speed: 2 worker processes against 1.

Builds masked records of the shared corpus (``DATA/corpus``) as ``wobert data build`` does,
with 1 and then 2 workers, checks that both wrote identical shards (sha256) and prints
documents/s, tokens/s and the ratio (target: at least 1.6x).

The vocabulary is ``--vocab`` (default: ``runs/vocab`` when ``make vocab`` has built it,
else bert-base-chinese's ``vocab.txt``, a char tokenizer); masking is whole-word, so jieba
segments the text either way.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from wobert.manifest import Manifest
from wobert.records import DataOptions, build_records

TARGET = 1.6


def timed_build(options: DataOptions, workers: int) -> tuple[float, Manifest]:
    options.workers = workers
    with tempfile.TemporaryDirectory(prefix="bench_data_") as out:
        start = time.perf_counter()
        manifest = build_records(options, out, progress=False)
        return time.perf_counter() - start, manifest


def best_of(options: DataOptions, repeat: int) -> dict[int, tuple[float, Manifest]]:
    """The fastest of ``repeat`` builds with 1 and with 2 workers (taken in turns)."""
    best: dict[int, tuple[float, Manifest]] = {}
    for _ in range(repeat):
        for workers in (1, 2):
            seconds, manifest = timed_build(options, workers)
            if workers not in best or seconds < best[workers][0]:
                best[workers] = seconds, manifest
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="shared data directory")
    parser.add_argument("--vocab", help="vocabulary directory or vocab.txt (default: runs/vocab, "
                        "else DATA/bert-base-chinese/vocab.txt)")
    parser.add_argument("--maxlen", type=int, default=128, help="sequence length (default: 128)")
    parser.add_argument("--shard-chars", type=int, default=250_000, help="characters per shard")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting, in turns; the fastest counts")
    args = parser.parse_args()
    corpus = Path(args.data, "corpus")
    vocab = Path(args.vocab or ("runs/vocab" if Path("runs/vocab/vocab.txt").is_file()
                                else Path(args.data, "bert-base-chinese", "vocab.txt")))
    if not corpus.is_dir() or not vocab.exists():
        print(f"bench_data: {corpus} or {vocab} is missing; nothing to measure", file=sys.stderr)
        return 2
    options = DataOptions(corpus=[str(corpus)], vocab=str(vocab), maxlen=args.maxlen, masking="wwm",
                          shard_chars=args.shard_chars)
    best = best_of(options, args.repeat)
    (one, m1), (two, m2) = best[1], best[2]
    if [s.sha256 for s in m1.shards] != [s.sha256 for s in m2.shards]:
        print("bench_data: 1 and 2 workers wrote different shards", file=sys.stderr)
        return 1
    ratio = one / two
    print(f"corpus: {corpus} ({m1.documents:,} documents, {m1.tokens:,} tokens, "
          f"{len(m1.shards)} shards), vocab: {vocab} ({m1.tokenizer})")
    for name, seconds in (("1 worker ", one), ("2 workers", two)):
        print(f"{name}: {seconds:6.2f} s  {m1.documents / seconds:8,.0f} documents/s  "
              f"{m1.tokens / seconds:10,.0f} tokens/s")
    print(f"ratio 2 vs 1 workers: {ratio:.2f}x (target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
