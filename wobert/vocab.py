"""Word vocabularies on a character base: WoBERT's recipe, or words counted on a corpus.

The base is a character vocab such as Google's bert-base-chinese ``vocab.txt``, simplified as
bert4keras ``load_vocab(simplified=True, startswith=SPECIAL_TOKENS)`` does (``keep_tokens``
records the old ids), or, without one, the characters counted on the corpus. On top come
the user words, then ``num_words`` words ranked by count (ties by the word itself):

- ``jieba``: jieba's dictionary frequencies (WoBERT's recipe);
- ``corpus``: the corpus cut as the tokenizer cuts it (jieba, HMM off), counted over worker
  processes; every ``HOLDOUT_EVERY``-th line is held out for the statistics instead.

A ranked word is taken only if the tokenizer can produce it (``cut(word) == [word]``: a word
with capitals never occurs in lower-cased text), it is not a base token, and the character
tokenizer spells it without ``[UNK]``: such a word could not start from the character
embeddings (``compound_tokens``) and is rare by construction.

Output directory: ``vocab.txt`` + ``tokenizer_config.json`` (``Tokenizer.load(DIR)``),
``keep_tokens.json``, ``compound_tokens.json`` (base ids of each new word, in vocab order),
``stats.json``, ``stats.md`` and ``tokens_per_char.png``. Same inputs, byte-identical files.
"""
from __future__ import annotations

import argparse
import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

from wobert.cache import Cache
from wobert.checks import NON_NEGATIVE, POSITIVE, check_field_types, check_output_dir, number, output_dir
from wobert.config import Job, given, load_job
from wobert.corpus import SkipLog, chunked, fold_chunks, iter_lines
from wobert.errors import UserError
from wobert.jsonfile import write_json
from wobert.segment import jieba_dictionary
from wobert.tokenizer import (
    SPECIAL_TOKENS,
    CharTokenizer,
    Tokenizer,
    extend_vocab,
    is_cjk,
    is_redundant,
    normalize,
    read_user_words,
    read_vocab,
    simplify_vocab,
)
from wobert.vocabdir import FILES, VocabDir

log = logging.getLogger(__name__)

WORD_SOURCES = ("jieba", "corpus")
LABELS = {"jieba": "jieba dictionary words", "corpus": "corpus words"}
CURVE = (0, 5000, 10000, 20000, 40000, 80000)
HOLDOUT_EVERY = 20
SAMPLE_MAX_LINES = 20000
BUILTIN_SAMPLE_EVERY = 10
CHUNK_CHARS = 1 << 16
TOP_WORDS = 50
OUTPUT_FILES = FILES + ("stats.json", "stats.md", "tokens_per_char.png")

Spelling = Callable[[str], tuple]


@dataclass
class VocabSpec:
    """What to build; the fields are the CLI options and the keys of a ``vocab/*.json`` job."""

    base_vocab: str | None = None
    num_words: int = 20000
    word_source: str = "jieba"
    corpus: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    text_field: str = "text"
    min_count: int = 5
    max_word_len: int | None = None
    user_words: str | None = None
    do_lower_case: bool = True
    curve: list[int] = field(default_factory=lambda: list(CURVE))
    workers: int = 1
    strict: bool = False

    PATH_FIELDS = ("base_vocab", "corpus", "eval", "user_words")

    def __post_init__(self) -> None:
        check_field_types(self, "vocab options")
        if self.word_source not in WORD_SOURCES:
            raise UserError(f"word source must be one of {WORD_SOURCES}, not {self.word_source!r}")
        if self.num_words < 0 or min(self.curve, default=0) < 0:
            raise UserError("the number of words and the curve points must be >= 0")
        if self.min_count < 1 or self.workers < 1:
            raise UserError("min_count and workers must be >= 1")
        if self.max_word_len is not None and self.max_word_len < 2:
            raise UserError("max_word_len must be at least 2 (words have 2 or more characters)")
        if self.word_source == "corpus" and not self.corpus:
            raise UserError("--word-source corpus needs --corpus FILE ...")
        if self.base_vocab is None and not self.corpus:
            raise UserError("without --base-vocab, a --corpus is needed to count the characters")

    @classmethod
    def from_config(cls, config: Job | None = None, root: str | Path = ".", *,
                    base: Mapping[str, Any] | None = None, **overrides: Any) -> VocabSpec:
        """A spec from ``base``, then a job config (a ``vocab/*.json`` file or its mapping;
        relative paths in it start from ``root``), then the ``overrides`` that are not None."""
        return load_job(cls, config, what="vocab", root=root, paths=cls.PATH_FIELDS, base=base,
                        overrides=overrides)


# ---------------------------------------------------------------------------------------
# Base vocab, user words, ranked candidates
# ---------------------------------------------------------------------------------------


def load_base_vocab(path: str | Path) -> tuple[dict[str, int], list[int], int]:
    """The simplified base vocab, its ``keep_tokens`` and the size of the original vocab."""
    token_dict = read_vocab(path)  # fails, naming the file, without the special tokens
    return (*simplify_vocab(token_dict), len(token_dict))


def load_user_words(path: str | Path, do_lower_case: bool = True) -> list[tuple[str, int | None]]:
    """A jieba user dictionary (``word [freq] [tag]``) as normalized (word, freq), first wins."""
    words: dict[str, int | None] = {}
    for word, freq in read_user_words(path):
        words.setdefault(normalize(word) if do_lower_case else word, freq)
    return list(words.items())


def ranked(counts: Mapping[str, int], min_count: int = 1) -> list[tuple[str, int]]:
    """``(item, count)`` with count >= ``min_count``, by count descending, then item."""
    return sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda x: (-x[1], x[0]))


def char_vocab(chars: Mapping[str, int], min_count: int) -> dict[str, int]:
    """Special tokens, then the characters counted at least ``min_count`` times (most frequent
    first), then a ``##`` continuation piece for each non-CJK letter or digit (WordPiece)."""
    tokens = list(SPECIAL_TOKENS)
    tokens += [ch for ch, _ in ranked(chars, min_count)
               if not ch.isspace() and unicodedata.category(ch)[0] != "C"]
    tokens += ["##" + ch for ch in tokens if len(ch) == 1 and ch.isalnum() and not is_cjk(ch)]
    return {t: i for i, t in enumerate(tokens)}


# ---------------------------------------------------------------------------------------
# Counting and measuring, over worker processes
# ---------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    """Hand a process what its chunks need: ``tokenizer``, ``char_tokenizer``, ``count_chars``."""
    _WORKER.clear()
    _WORKER.update(state)


def _no_counts() -> tuple[Counter, Counter | None]:
    return Counter(), (Counter() if _WORKER["count_chars"] else None)


def _count_step(counts: tuple[Counter, Counter | None], texts: list[str]) -> tuple[Counter, Counter | None]:
    """Add the cut pieces of ``texts`` (and their normalized characters) to the counts."""
    pieces, chars = counts
    cut = _WORKER["tokenizer"].cut
    for text in texts:
        cut_text = cut(text)
        pieces.update(cut_text)
        if chars is not None:
            chars.update("".join(cut_text))
    return counts


def _progress(items: Iterable, desc: str) -> Iterator:
    return iter(tqdm(items, desc=desc, unit=" lines", disable=None, leave=False))


@dataclass
class CorpusCounts:
    """What counting a corpus gives: piece and character counts, held-out texts, skips."""

    pieces: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)
    lines: int = 0
    held_out: list[str] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)


def count_corpus(
    paths: Iterable[str | Path],
    tokenizer: Tokenizer,
    *,
    workers: int = 1,
    count_chars: bool = False,
    holdout_every: int = HOLDOUT_EVERY,
    max_held_out: int = SAMPLE_MAX_LINES,
    strict: bool = False,
    text_field: str = "text",
) -> CorpusCounts:
    """Count the pieces ``tokenizer.cut`` gives on the corpus (and, if asked, their characters)
    over ``workers`` processes. Every ``holdout_every``-th line (0: none) is held out instead,
    up to ``max_held_out`` lines. The result does not depend on ``workers``."""
    counts = CorpusCounts()
    lines = iter_lines(paths, strict=strict, skips=counts.skips, text_field=text_field)

    def counted() -> Iterator[str]:
        for i, line in enumerate(_progress(lines, "counting")):
            if holdout_every and i % holdout_every == holdout_every - 1 \
                    and len(counts.held_out) < max_held_out:
                counts.held_out.append(line.text)
            else:
                counts.lines += 1
                yield line.text

    chunks = chunked(counted(), CHUNK_CHARS, weight=len)
    state = {"tokenizer": tokenizer, "count_chars": count_chars}
    for pieces, chars in fold_chunks(_count_step, chunks, _no_counts, workers=workers,
                                     initializer=_init_worker, initargs=(state,)):
        counts.pieces.update(pieces)
        counts.chars.update(chars or {})
    return counts


@dataclass
class Sample:
    """Text to measure tokenizers on, kept as its cut pieces and its char-tokenizer counts."""

    source: str = ""
    lines: int = 0
    chars: int = 0
    pieces: Counter = field(default_factory=Counter)
    char_tokens: int = 0
    char_unks: int = 0

    def add(self, other: Sample) -> None:
        self.lines += other.lines
        self.chars += other.chars
        self.pieces.update(other.pieces)
        self.char_tokens += other.char_tokens
        self.char_unks += other.char_unks


def _measure_step(sample: Sample, texts: list[str]) -> Sample:
    """Add ``texts`` to the sample: characters, cut pieces, char-tokenizer tokens."""
    tokenizer, char_tokenizer = _WORKER["tokenizer"], _WORKER["char_tokenizer"]
    sample.lines += len(texts)
    for text in texts:
        sample.chars += len("".join(text.split()))
        sample.pieces.update(tokenizer.cut(text))
        ids = char_tokenizer.encode(text)[0][1:-1]
        sample.char_tokens += len(ids)
        sample.char_unks += ids.count(char_tokenizer.unk_id)
    return sample


def measure_sample(texts: Iterable[str], source: str, tokenizer: Tokenizer,
                   char_tokenizer: CharTokenizer, *, workers: int = 1) -> Sample:
    """Cut ``texts`` once and count their char-tokenizer tokens; any word vocab can then be
    measured on the pieces (:func:`tokenizer_stats`) without tokenizing again."""
    sample = Sample(source)
    chunks = chunked(_progress(texts, "measuring"), CHUNK_CHARS, weight=len)
    state = {"tokenizer": tokenizer, "char_tokenizer": char_tokenizer}
    for part in fold_chunks(_measure_step, chunks, Sample, workers=workers,
                            initializer=_init_worker, initargs=(state,)):
        sample.add(part)
    return sample


def builtin_sample() -> tuple[str, list[str]]:
    """Every ``BUILTIN_SAMPLE_EVERY``-th paragraph of the embedded People's Daily text."""
    from wobert.embedded import peoples_daily

    texts = list(islice(islice(peoples_daily(), 0, None, BUILTIN_SAMPLE_EVERY), SAMPLE_MAX_LINES))
    return f"built-in: every {BUILTIN_SAMPLE_EVERY}th paragraph of People's Daily 1998-01", texts


# ---------------------------------------------------------------------------------------
# Spelling in characters, choosing words
# ---------------------------------------------------------------------------------------


class Speller:
    """``speller(piece)``: the ids the char tokenizer of ``vocab`` gives ``piece``, cached."""

    def __init__(self, vocab: Mapping[str, int], do_lower_case: bool = True) -> None:
        self.char_tokenizer = CharTokenizer(dict(vocab), do_lower_case=do_lower_case)
        self.unk_id = self.char_tokenizer.unk_id
        self._cache = Cache(lambda piece: tuple(self.char_tokenizer.encode(piece)[0][1:-1]))

    def __call__(self, piece: str) -> tuple:
        return self._cache[piece]


def speller_for(vocab: Mapping[str, int], base_speller: Speller) -> Spelling:
    """How the word tokenizer of ``vocab`` (base tokens first) spells a piece it lacks. That is
    the base spelling unless ``vocab`` adds tokens WordPiece can use (no CJK or punctuation
    in them); then a piece with a non-CJK character is spelled by ``vocab``'s char tokenizer."""
    base = base_speller.char_tokenizer.token_dict
    if all(is_redundant(t) for t in vocab if t not in base):
        return base_speller
    own = Speller(vocab, base_speller.char_tokenizer.do_lower_case)
    return lambda piece: base_speller(piece) if all(map(is_cjk, piece)) else own(piece)


class WordFilter:
    """``word_filter(word)``: whether a ranked candidate can become a vocab word."""

    def __init__(self, base: Mapping[str, int], tokenizer: Tokenizer, spell: Speller,
                 max_word_len: int | None) -> None:
        self.base, self.tokenizer, self.spell = base, tokenizer, spell
        self.max_word_len = max_word_len or float("inf")

    def __call__(self, word: str) -> bool:
        return (2 <= len(word) <= self.max_word_len and word not in self.base
                and any(ch.isalnum() for ch in word) and not any(ch.isspace() for ch in word)
                and self.spell.unk_id not in self.spell(word) and self.tokenizer.cut(word) == [word])


def select_words(candidates: Iterable[tuple[str, int]], accept: Callable[[str], bool], n: int,
                 exclude: Iterable[str] = ()) -> list[tuple[str, int]]:
    """The first ``n`` candidates that ``accept`` takes and that are not in ``exclude``."""
    exclude = set(exclude)
    return list(islice(((w, c) for w, c in candidates if w not in exclude and accept(w)), n))


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return round(a / b, 6) if b else 0.0


def tokenizer_stats(sample: Sample, vocab: Mapping[str, int], spell: Spelling) -> dict[str, Any]:
    """Tokens per character, ``[UNK]`` rate and word coverage (share of the multi-character
    pieces kept whole) of the word tokenizer with ``vocab`` on the sample: a piece in the vocab
    is one token, any other is spelled by ``spell`` -- what ``Tokenizer.tokenize`` does."""
    tokens = unks = words = covered = 0
    unk_id = vocab["[UNK]"]
    for piece, n in sample.pieces.items():
        if piece in vocab:
            tokens += n
        else:
            ids = spell(piece)
            tokens += n * len(ids)
            unks += n * ids.count(unk_id)
        if len(piece) > 1 and not piece.isspace():
            words += n
            covered += n * (piece in vocab)
    return {"tokens": tokens, "tokens_per_char": _ratio(tokens, sample.chars),
            "unk_rate": _ratio(unks, tokens), "word_coverage": _ratio(covered, words)}


def compare_word_lists(sample: Sample, start: Mapping[str, int], word_lists: Mapping[str, list[str]],
                       n: int, points: Iterable[int], base_speller: Speller
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[int, float]]]:
    """For each ranked word list: the stats of ``start`` (base and user words) plus its first
    ``n`` words, and the tokens per character with its first k words for each k of ``points``
    and ``n`` (as far as the list goes)."""
    rows, curves = {}, {}
    for label, words in word_lists.items():
        curves[label] = {}
        for k in sorted(set(points) | {n}):
            if k > len(words):
                break
            vocab = extend_vocab(start, words[:k])
            row = tokenizer_stats(sample, vocab, speller_for(vocab, base_speller))
            curves[label][k] = row["tokens_per_char"]
            if k == n:
                rows[label] = row
    return rows, curves


def plot_curves(path: Path, curves: Mapping[str, Mapping[int, float]], char_tpc: float,
                chosen: int, title: str) -> None:
    """``tokens_per_char.png``: tokens per character against the number of words added."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, points in curves.items():
        xs = sorted(points)
        ax.plot([x / 1000 for x in xs], [points[x] for x in xs], marker="o", label=label)
    ax.axhline(char_tpc, color="gray", linestyle="--", label=f"char tokenizer ({char_tpc:.3f})")
    ax.axvline(chosen / 1000, color="gray", linestyle=":", label=f"chosen: {chosen} words")
    ax.set_xlabel("words added to the base vocab (thousands)")
    ax.set_ylabel("tokens per character")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def stats_markdown(stats: Mapping[str, Any]) -> str:
    """A readable ``stats.md`` from the stats."""
    words, sample = stats["words"], stats["sample"]
    lines = [
        "# Vocabulary statistics", "",
        f"- vocab size: {stats['vocab_size']} ({stats['base']['tokens']} base tokens + "
        f"{words['added']} words, {words['user_words']} of them user words)",
        f"- base: {stats['base']['source']}",
        f"- words: {words['source']} (asked {words['requested']}, "
        + (f"min count {words['min_count']}, " if words["min_count"] else "")
        + f"max length {words['max_word_len'] or 'none'})",
    ]
    if "corpus" in stats:
        corpus = stats["corpus"]
        lines.append(f"- corpus: {corpus['counted_lines']} lines counted, {corpus['held_out_lines']}"
                     f" held out; {corpus['skipped_summary']}")
    lines += [f"- sample: {sample['source']}: {sample['lines']} lines, {sample['chars']} characters",
              "", "Tokens exclude [CLS] and [SEP]; characters exclude white space. Word coverage: the "
              "share of multi-character pieces (jieba words) that stay one token.", "",
              "| tokenizer | tokens/char | [UNK] rate | word coverage |", "|---|---|---|---|"]
    for name, row in stats["tokenizers"].items():
        coverage = f"{row['word_coverage']:.4f}" if "word_coverage" in row else ""
        lines.append(f"| {name} | {row['tokens_per_char']:.4f} | {row['unk_rate']:.5f} | {coverage} |")
    lines += ["", f"Word tokenizer against char tokenizer: {stats['reduction_vs_char']:+.1%} tokens."]
    if "vs_jieba_recipe" in stats:
        lines.append(f"Corpus words against the jieba-dictionary recipe with as many words: "
                     f"{stats['vs_jieba_recipe']:+.1%} tokens.")
    curves = {label: dict(points) for label, points in stats["curve"].items()}
    lines += ["", "## Tokens per character by number of words", "",
              "| words | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
    for n in sorted({n for c in curves.values() for n in c}):
        lines.append(f"| {n} | " + " | ".join(f"{c[n]:.4f}" if n in c else "" for c in curves.values()) + " |")
    lines += ["", "## Word lengths", "", "| characters | words |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in words["length_histogram"].items()]
    lines += ["", f"## Top {len(words['top'])} ranked words", "", "| word | count |", "|---|---|"]
    lines += [f"| {w} | {c} |" for w, c in words["top"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------


def _eval_sample(spec: VocabSpec, counts: CorpusCounts | None) -> tuple[str, Iterable[str]]:
    """Where the statistics are measured: --eval, the held-out lines, or the built-in text."""
    if spec.eval:
        lines = iter_lines(spec.eval, strict=spec.strict, text_field=spec.text_field)
        return f"{' '.join(spec.eval)}", (line.text for line in islice(lines, SAMPLE_MAX_LINES))
    if counts is not None and counts.held_out:
        return f"every {HOLDOUT_EVERY}th corpus line, held out from counting", counts.held_out
    return builtin_sample()


@dataclass
class Base:
    """The character vocab words are added to, and where it comes from."""

    tokens: dict[str, int]
    source: str
    keep_tokens: list[int] | None = None  # old ids of a simplified vocab.txt
    original_size: int | None = None


@dataclass
class Choice:
    """The words chosen for the vocabulary, and the ranked lists they were taken from."""

    vocab: dict[str, int]
    user_new: list[str]  # user words not in the base, added first
    chosen: list[tuple[str, int]]  # ranked words after them, with their counts
    ranked_lists: dict[str, list[tuple[str, int]]]  # by label: the source's and jieba's
    points: list[int]  # numbers of words the curve is measured at
    speller: Speller  # the base's char tokenizer

    @property
    def new_words(self) -> list[str]:
        return self.user_new + [w for w, _ in self.chosen]


def _corpus_stats(spec: VocabSpec, counts: CorpusCounts) -> dict[str, Any]:
    return {"files": list(spec.corpus), "counted_lines": counts.lines,
            "held_out_lines": len(counts.held_out), "skipped": counts.skips.to_dict(),
            "skipped_summary": counts.skips.summary()}


def choose_base(spec: VocabSpec) -> Base:
    """The base vocab: the simplified ``--base-vocab``, else the special tokens (the corpus's
    characters come with the counts)."""
    if spec.base_vocab:
        tokens, keep_tokens, size = load_base_vocab(spec.base_vocab)
        return Base(tokens, f"{spec.base_vocab}, simplified as bert4keras load_vocab(simplified=True)",
                    keep_tokens, size)
    return Base({t: i for i, t in enumerate(SPECIAL_TOKENS)},
                f"characters counted at least {spec.min_count} times in the corpus")


def count(spec: VocabSpec, base: Base, user_words: list) -> tuple[Tokenizer, CorpusCounts | None]:
    """Count the corpus (if any) with the base's word tokenizer; without a base vocab.txt the
    counted characters become the base. Returns the tokenizer of the (final) base."""
    tokenizer = Tokenizer(base.tokens, do_lower_case=spec.do_lower_case, user_words=user_words)
    if not spec.corpus:
        return tokenizer, None
    counts = count_corpus(spec.corpus, tokenizer, workers=spec.workers, count_chars=not spec.base_vocab,
                          holdout_every=0 if spec.eval else HOLDOUT_EVERY, strict=spec.strict,
                          text_field=spec.text_field)
    if not counts.lines:
        raise UserError(f"the corpus has no text to count ({' '.join(spec.corpus)}: "
                        f"{counts.skips.summary()})")
    if not spec.base_vocab:
        base.tokens = char_vocab(counts.chars, spec.min_count)
        if len(base.tokens) == len(SPECIAL_TOKENS):
            raise UserError(f"no character occurs --min-count {spec.min_count} times in the corpus "
                            f"({counts.lines:,} lines): lower --min-count, add text or give --base-vocab")
        tokenizer = Tokenizer(base.tokens, do_lower_case=spec.do_lower_case, user_words=user_words)
    return tokenizer, counts


def choose(spec: VocabSpec, base: Base, tokenizer: Tokenizer, user_words: list,
           counts: CorpusCounts | None) -> Choice:
    """The user words, then the ranked words of the chosen source (and jieba's, to compare
    corpus words with) that the tokenizer can produce."""
    speller = Speller(base.tokens, spec.do_lower_case)
    accept = WordFilter(base.tokens, tokenizer, speller, spec.max_word_len)
    user_new = [w for w, _ in user_words if w not in base.tokens]
    points = sorted(set(spec.curve) | {spec.num_words})
    jieba_ranked = ranked(jieba_dictionary()[0])
    sources = {"jieba": jieba_ranked}
    if spec.word_source == "corpus":
        sources = {"corpus": ranked({w: n for w, n in counts.pieces.items() if len(w) > 1}, spec.min_count),
                   "jieba": jieba_ranked}
    ranked_lists = {LABELS[name]: select_words(candidates, accept, max(points), exclude=user_new)
                    for name, candidates in sources.items()}
    chosen = ranked_lists[LABELS[spec.word_source]][:spec.num_words]
    if len(chosen) < spec.num_words:
        log.warning("only %d words qualify for --num-words %d: taking all of them", len(chosen), spec.num_words)
    vocab = extend_vocab(base.tokens, user_new + [w for w, _ in chosen])
    return Choice(vocab, user_new, chosen, ranked_lists, points, speller)


def write_vocab_dir(out: Path, spec: VocabSpec, choice: Choice, user_words: list, base: Base) -> None:
    """vocab.txt, tokenizer_config.json (char level when no word was added), keep_tokens.json
    (with a base vocab.txt), compound_tokens.json (each new word spelled in base ids)."""
    new_words = choice.new_words
    if new_words or user_words:
        Tokenizer(choice.vocab, do_lower_case=spec.do_lower_case, user_words=user_words).save(out)
    else:  # no words: a character vocabulary, tokenized as BERT does
        CharTokenizer(choice.vocab, do_lower_case=spec.do_lower_case).save(out)
    VocabDir(out).write_extras(base.keep_tokens, [list(choice.speller(w)) for w in new_words])


def measure(spec: VocabSpec, base: Base, tokenizer: Tokenizer, choice: Choice,
            counts: CorpusCounts | None) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    """The statistics of the vocabulary on the sample, and the tokens-per-character curves."""
    source, texts = _eval_sample(spec, counts)
    sample = measure_sample(texts, source, tokenizer, choice.speller.char_tokenizer, workers=spec.workers)
    if not sample.chars:
        raise UserError(f"no text to measure the tokenizers on ({source})")
    chosen, new_words = choice.chosen, choice.new_words
    rows, curves = compare_word_lists(
        sample, extend_vocab(base.tokens, choice.user_new),
        {label: [w for w, _ in words] for label, words in choice.ranked_lists.items()},
        len(chosen), choice.points, choice.speller)
    word_row = rows.pop(LABELS[spec.word_source])
    char_row = {"tokens": sample.char_tokens, "tokens_per_char": _ratio(sample.char_tokens, sample.chars),
                "unk_rate": _ratio(sample.char_unks, sample.char_tokens)}
    stats: dict[str, Any] = {"corpus": _corpus_stats(spec, counts)} if counts is not None else {}
    stats.update({
        "vocab_size": len(choice.vocab),
        "base": {"source": base.source, "tokens": len(base.tokens), "original_size": base.original_size},
        "words": {
            "source": spec.word_source, "requested": spec.num_words, "added": len(new_words),
            "user_words": len(choice.user_new), "max_word_len": spec.max_word_len,
            "min_count": spec.min_count if spec.word_source == "corpus" else None,
            "length_histogram": {str(k): v for k, v in sorted(Counter(map(len, new_words)).items())},
            "top": [[w, n] for w, n in chosen[:TOP_WORDS]],
        },
        "do_lower_case": spec.do_lower_case,
        "sample": {"source": source, "lines": sample.lines, "chars": sample.chars},
        "tokenizers": {"word": word_row, "char": char_row},
        "reduction_vs_char": _ratio(word_row["tokens"] - char_row["tokens"], char_row["tokens"]),
        "curve": {label: sorted(curve.items()) for label, curve in curves.items()},
    })
    if LABELS["jieba"] in rows:
        jieba_row = stats["tokenizers"]["jieba recipe (as many words)"] = rows[LABELS["jieba"]]
        stats["vs_jieba_recipe"] = _ratio(word_row["tokens"] - jieba_row["tokens"], jieba_row["tokens"])
    return stats, curves


def write_stats(out: Path, stats: Mapping[str, Any], curves: Mapping[str, Mapping[int, float]]) -> None:
    """stats.json, stats.md and tokens_per_char.png."""
    write_json(out / "stats.json", stats, sort_keys=True)
    (out / "stats.md").write_text(stats_markdown(stats), encoding="utf-8")
    chosen = stats["words"]["added"] - stats["words"]["user_words"]
    plot_curves(out / "tokens_per_char.png", curves, stats["tokenizers"]["char"]["tokens_per_char"], chosen,
                f"{stats['base']['tokens']} base tokens; sample: {stats['sample']['source']}"[:110])


def build_vocab(spec: VocabSpec, out: str | Path) -> dict[str, Any]:
    """Build the vocabulary ``spec`` describes into directory ``out``; return its stats."""
    out = check_output_dir(out)
    user_words = load_user_words(spec.user_words, spec.do_lower_case) if spec.user_words else []
    base = choose_base(spec)
    tokenizer, counts = count(spec, base, user_words)
    choice = choose(spec, base, tokenizer, user_words, counts)
    write_vocab_dir(out, spec, choice, user_words, base)
    stats, curves = measure(spec, base, tokenizer, choice, counts)
    write_stats(out, stats, curves)
    return stats


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_cli(parser: argparse.ArgumentParser) -> None:
    """``wobert vocab build``; every option overrides the same key of ``--config``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "build", help="build a word vocabulary on a character base",
        description="Build vocab.txt (base characters, then words), tokenizer_config.json, "
        "keep_tokens.json, compound_tokens.json, stats.json, stats.md and tokens_per_char.png "
        "in --out. Options override the keys of --config (same names, with underscores).",
    )
    d = VocabSpec  # the class attributes hold the defaults
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    p.add_argument("--config", help="a vocab/*.json job (keys: the options below)")
    p.add_argument("--data", default=".", help="where the config's relative paths start (default: .)")
    p.add_argument("--base-vocab", metavar="FILE",
                   help="character vocab.txt to simplify and extend (default: count characters on --corpus)")
    p.add_argument("--num-words", type=NON_NEGATIVE, help=f"words to add besides user words (default: {d.num_words})")
    p.add_argument("--word-source", choices=WORD_SOURCES, help="jieba: jieba's dictionary frequencies "
                   f"(WoBERT); corpus: counted on --corpus (default: {d.word_source})")
    p.add_argument("--corpus", nargs="+", metavar="PATH",
                   help="text (a document per line), JSONL, .gz of either, or directories of them")
    p.add_argument("--eval", nargs="+", metavar="PATH", help="text to measure tokens per character on "
                   f"(default: every {HOLDOUT_EVERY}th corpus line, held out from counting; "
                   "without a corpus, a built-in People's Daily sample)")
    p.add_argument("--text-field", help=f"JSON field holding the text (default: {d.text_field})")
    p.add_argument("--min-count", type=POSITIVE,
                   help=f"least corpus count of a counted word or character (default: {d.min_count})")
    p.add_argument("--max-word-len", type=number(int, 2), help="longest word, in characters (default: no limit)")
    p.add_argument("--user-words", metavar="FILE",
                   help="words always added first, jieba user-dict format: word [freq] [tag]")
    p.add_argument("--cased", dest="do_lower_case", action="store_const", const=False,
                   help="keep case (default: lower-case and strip accents, as bert-base-chinese)")
    p.add_argument("--curve", type=NON_NEGATIVE, nargs="+", metavar="N", help="numbers of words to plot "
                   "tokens per character for (default: " + " ".join(map(str, CURVE)) + ")")
    p.add_argument("--workers", type=POSITIVE, help=f"processes (default: {os.cpu_count() or 1}, the CPUs)")
    p.add_argument("--strict", action="store_const", const=True,
                   help="fail on a non-UTF-8 or malformed line instead of skipping and counting it")


def spec_from_args(args: argparse.Namespace) -> VocabSpec:
    """The ``--config`` job (if any) with the options given on the command line on top."""
    return VocabSpec.from_config(args.config, args.data, base={"workers": os.cpu_count() or 1},
                                 **given(args, VocabSpec))


def run_cli(args: argparse.Namespace) -> int:
    stats = build_vocab(spec_from_args(args), args.out)
    tokenizers = stats["tokenizers"]
    print(f"{args.out}: {stats['vocab_size']} tokens ({stats['base']['tokens']} base + "
          f"{stats['words']['added']} words)")
    print(f"tokens per character on {stats['sample']['source']}: word "
          f"{tokenizers['word']['tokens_per_char']:.4f}, char {tokenizers['char']['tokens_per_char']:.4f}"
          f" ({stats['reduction_vs_char']:+.1%})")
    if "vs_jieba_recipe" in stats:
        print(f"corpus words against the jieba recipe: {stats['vs_jieba_recipe']:+.1%} tokens")
    if "corpus" in stats:
        print(stats["corpus"]["skipped_summary"])
    return 0
