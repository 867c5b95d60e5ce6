"""Tokenizer benchmark: wobert's tokenizers against bert4keras (+ jieba, HMM off), same run.

On every line of DATA/corpus/**/*.txt and every sentence (and OCNLI sentence pair) of
DATA/clue/*/*.json, with the WoBERT vocabulary (bert-base-chinese simplified as bert4keras
does, plus the 20,000 most frequent words of jieba's dictionary):

- exactness: token ids equal to the reference's, word and char level (mismatches counted);
- MB/s (UTF-8 input) of one process, ``encode`` and ``tokenize`` text by text, wobert vs the
  reference, interleaved in chunks so both see the same machine load;
- ``encode_batch`` with 2 workers vs 1 (best of 5, taking turns), word level, on 10,000 corpus
  lines, 10,000 CLUE sentences, all corpus lines, and every text;
- tokens per character, word vs char tokenizer.

Prints a markdown table; ``--out FILE`` also writes it there.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wobert.segment import jieba_words  # noqa: E402
from wobert.tokenizer import (  # noqa: E402
    CharTokenizer,
    Tokenizer,
    extend_vocab,
    read_vocab,
    simplify_vocab,
)

CHUNK = 4000  # texts per turn: both sides see the same machine load, neither evicts the other often


def load_texts(data: Path, limit: int | None) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(corpus lines, CLUE sentences, CLUE sentence pairs), each cut to ``limit`` if given."""
    corpus: list[str] = []
    for path in sorted((data / "corpus").rglob("*.txt")):
        with open(path, encoding="utf-8") as f:
            corpus += [line.rstrip("\n") for line in f]
    sentences, pairs = [], []
    for path in sorted((data / "clue").glob("*/*.json")):
        if path.name == "labels.json":
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if "sentence" in record:
                    sentences.append(record["sentence"])
                if "sentence1" in record:
                    pairs.append((record["sentence1"], record["sentence2"]))
    if not corpus or not sentences:
        raise SystemExit(f"no corpus or CLUE text under {data}")
    return corpus[:limit], sentences[:limit], pairs[:limit]


def wobert_vocab(data: Path) -> dict[str, int]:
    simplified, _ = simplify_vocab(read_vocab(data / "bert-base-chinese" / "vocab.txt"))
    return extend_vocab(simplified, jieba_words(20_000, exclude=simplified))


def mismatches(ours, ref, texts: list[str]) -> tuple[int, int]:
    """Texts whose ids differ between the two, and wobert's tokens (without [CLS], [SEP])."""
    bad = tokens = 0
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start:start + CHUNK]
        got = [ours.encode(t) for t in chunk]
        bad += sum(a != ref.encode(t) for a, t in zip(got, chunk))
        tokens += sum(len(ids) - 2 for ids, _ in got)
    return bad, tokens


def race(ours, ref, texts: list[str], method: str = "encode") -> dict[str, float]:
    """Wall and CPU seconds of each running ``method`` (encode or tokenize) on ``texts``,
    taking turns every CHUNK texts so both see the same machine load."""
    stats = dict.fromkeys(("ours_wall", "ref_wall", "ours_cpu", "ref_cpu"), 0.0)
    turns = (("ref", ref), ("ours", ours))
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start:start + CHUNK]
        for name, tokenizer in turns if start // CHUNK % 2 else turns[::-1]:
            _, wall, cpu = timed(functools.partial(run_all, getattr(tokenizer, method), chunk))
            stats[f"{name}_wall"] += wall
            stats[f"{name}_cpu"] += cpu
    return stats


def run_all(method: Callable[[str], Any], texts: list[str]) -> None:
    """``method`` on every text, keeping no result (a growing list of results slows the GC)."""
    for text in texts:
        method(text)


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``, its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def pair_mismatches(ours, ref, pairs: list[tuple[str, str]]) -> int:
    return sum(ours.encode(a, b, maxlen=maxlen) != ref.encode(a, b, maxlen=maxlen)
               for a, b in pairs for maxlen in (None, 64))


def utf8_megabytes(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def workers_speedup(vocab: dict[str, int], texts: list[str], workers: int,
                    repeat: int = 5) -> tuple[float, float]:
    """Best wall seconds of ``encode_batch`` with 1 worker and with ``workers``, taking turns,
    each run on a new tokenizer, built before the clock starts."""
    best = {1: math.inf, workers: math.inf}
    for _ in range(repeat):
        for n in best:
            tokenizer = Tokenizer(vocab)
            _, wall, _ = timed(functools.partial(tokenizer.encode_batch, texts, workers=n))
            best[n] = min(best[n], wall)
    return best[1], best[workers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="the shared data directory (corpus/, clue/, bert-base-chinese/)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N lines per source only (a quick run; default: all)")
    parser.add_argument("--workers", type=int, default=2, help="workers for the parallel run")
    args = parser.parse_args(argv)
    if not (args.data / "bert-base-chinese" / "vocab.txt").is_file():
        print(f"bench_tokenizer: no shared data under {args.data}; skipped", file=sys.stderr)
        return 0

    load = os.getloadavg()[0]
    corpus, sentences, pairs = load_texts(args.data, args.limit)
    texts = corpus + sentences
    megabytes = utf8_megabytes(texts)
    chars = sum(len(t) for t in texts)
    vocab = wobert_vocab(args.data)
    parallel = [(f"{len(part):,} {name}", utf8_megabytes(part), workers_speedup(vocab, part, args.workers))
                for name, part in (("corpus lines", corpus[:10_000]),
                                   ("CLUE sentences", sentences[:10_000]), ("corpus lines", corpus),
                                   ("corpus lines and CLUE sentences", texts))]
    print(f"workers: {parallel}", file=sys.stderr)

    import jieba

    from wobert.backend import Bert4kerasTokenizer

    base = read_vocab(args.data / "bert-base-chinese" / "vocab.txt")
    reference_jieba = jieba.Tokenizer()
    reference_jieba.initialize()
    ref_word = Bert4kerasTokenizer(vocab, do_lower_case=True,
                                   pre_tokenize=lambda s: reference_jieba.cut(s, HMM=False))
    ref_char = Bert4kerasTokenizer(base, do_lower_case=True)
    word, char = Tokenizer(vocab), CharTokenizer(base)

    print(f"{len(corpus)} corpus lines, {len(sentences)} CLUE sentences, {len(pairs)} pairs, "
          f"{megabytes:.1f} MB; word vocab {len(vocab)}", file=sys.stderr)
    word_bad, word_tokens = mismatches(word, ref_word, texts)
    char_bad, char_tokens = mismatches(char, ref_char, texts)
    pair_bad = (pair_mismatches(word, ref_word, pairs), pair_mismatches(char, ref_char, pairs))
    print(f"mismatches: word {word_bad}, char {char_bad}, pairs {pair_bad}", file=sys.stderr)
    w = race(Tokenizer(vocab), ref_word, texts)
    print(f"word: {w}", file=sys.stderr)
    c = race(CharTokenizer(base), ref_char, texts)
    print(f"char: {c}", file=sys.stderr)
    tokenize = {"word": race(Tokenizer(vocab), ref_word, texts, "tokenize"),
                "char": race(CharTokenizer(base), ref_char, texts, "tokenize")}
    print(f"tokenize: {tokenize}", file=sys.stderr)

    def speed(stats: dict, clock: str) -> str:
        ours, ref = megabytes / stats[f"ours_{clock}"], megabytes / stats[f"ref_{clock}"]
        return f"{ref:.2f} | {ours:.2f} | **{ours / ref:.1f}x**"

    rows = [
        "| measure | reference | wobert | ratio |",
        "|---|---|---|---|",
        f"| word tokenizer, 1 process, MB/s (wall clock) | {speed(w, 'wall')} |",
        f"| word tokenizer, 1 process, MB/s (CPU time) | {speed(w, 'cpu')} |",
        f"| char tokenizer, 1 process, MB/s (wall clock) | {speed(c, 'wall')} |",
        f"| char tokenizer, 1 process, MB/s (CPU time) | {speed(c, 'cpu')} |",
        *(f"| {level} tokenizer `tokenize`, 1 process, MB/s (wall clock) | {speed(stats, 'wall')} |"
          for level, stats in tokenize.items()),
        *(f"| word `encode_batch`, {name}, 1 vs {args.workers} workers, MB/s "
          f"| {mb / one:.2f} | {mb / many:.2f} | **{one / many:.2f}x** |"
          for name, mb, (one, many) in parallel),
        f"| word tokenizer, {args.workers} workers (`encode_batch`, all text) vs the reference, MB/s "
        f"| {megabytes / w['ref_wall']:.2f} | {megabytes / parallel[-1][2][1]:.2f} "
        f"| **{w['ref_wall'] / parallel[-1][2][1]:.1f}x** |",
        f"| tokens per character, char vs word | {char_tokens / chars:.3f} | "
        f"{word_tokens / chars:.3f} | {word_tokens / char_tokens:.3f} |",
        "",
        f"Exactness, ids vs bert4keras: word {word_bad}, char {char_bad} mismatches "
        f"in {len(texts)} texts; pairs (maxlen none and 64) word {pair_bad[0]}, char {pair_bad[1]} "
        f"mismatches in {2 * len(pairs)}. Input {megabytes:.1f} MB ({chars} characters); "
        f"{os.cpu_count()} CPUs; load average before the run {load:.1f}, after "
        f"{os.getloadavg()[0]:.1f}. In the `encode_batch` 1-vs-{args.workers} rows the reference "
        f"column is wobert with 1 worker.",
    ]
    table = "\n".join(rows)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    return 1 if word_bad or char_bad or any(pair_bad) else 0


if __name__ == "__main__":
    raise SystemExit(main())
