"""Word counting speed of the vocabulary builder: 2 worker processes against 1.

Counts the pieces of the shared corpus (``DATA/corpus``) as ``wobert vocab build --word-source
corpus`` does, with 1 and then 2 workers, checks that both give the same counts and prints
MB/s and the ratio (target: at least 1.6x).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wobert.corpus import expand_paths
from wobert.tokenizer import Tokenizer
from wobert.vocab import CorpusCounts, count_corpus, load_base_vocab

TARGET = 1.6


def timed_count(corpus: Path, tokenizer: Tokenizer, workers: int) -> tuple[float, CorpusCounts]:
    start = time.perf_counter()
    counts = count_corpus([corpus], tokenizer, workers=workers)
    return time.perf_counter() - start, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="shared data directory")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the fastest counts")
    args = parser.parse_args()
    corpus, vocab = Path(args.data, "corpus"), Path(args.data, "bert-base-chinese", "vocab.txt")
    if not corpus.is_dir() or not vocab.is_file():
        print(f"bench_vocab: {corpus} or {vocab} is missing; nothing to measure", file=sys.stderr)
        return 2
    megabytes = sum(p.stat().st_size for p in expand_paths(corpus)) / 1e6
    tokenizer = Tokenizer(load_base_vocab(vocab)[0])
    tokenizer.cut("预热分词器")  # load the dictionary before the fork and the clock
    times: dict[int, list[float]] = {1: [], 2: []}
    counts: dict[int, CorpusCounts] = {}
    for _ in range(args.repeat):  # alternate, so that load from other programs hits both
        for workers in (1, 2):
            seconds, counts[workers] = timed_count(corpus, tokenizer, workers)
            times[workers].append(seconds)
    (one, counts_one), (two, counts_two) = ((min(times[w]), counts[w]) for w in (1, 2))
    if (counts_one.pieces, counts_one.held_out) != (counts_two.pieces, counts_two.held_out):
        print("bench_vocab: 1 and 2 workers counted differently", file=sys.stderr)
        return 1
    ratio = one / two
    print(f"corpus: {megabytes:.1f} MB, {counts_one.lines} lines counted, "
          f"{sum(counts_one.pieces.values())} pieces")
    print(f"1 worker : {one:6.2f} s  {megabytes / one:6.2f} MB/s")
    print(f"2 workers: {two:6.2f} s  {megabytes / two:6.2f} MB/s")
    print(f"ratio 2 vs 1 workers: {ratio:.2f}x (target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
