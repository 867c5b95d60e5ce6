"""The vocabulary builder: recipes, outputs, determinism, statistics and bad input."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from itertools import islice
from pathlib import Path

import pytest
from processes import children, wait_until

from wobert.cli import UserError, main
from wobert.corpus import iter_lines
from wobert.tokenizer import SPECIAL_TOKENS, CharTokenizer, Tokenizer
from wobert.vocab import (
    OUTPUT_FILES,
    Speller,
    VocabSpec,
    build_vocab,
    char_vocab,
    count_corpus,
    load_base_vocab,
    measure_sample,
    ranked,
    speller_for,
    tokenizer_stats,
)

REPO = Path(__file__).resolve().parents[1]

SENTENCES = {  # sentence -> how often it occurs in the small corpus
    "我们喜欢北京天安门": 12,
    "中国人民银行发布公告": 8,
    "他们在上海工作": 6,
    "今天天气很好": 3,
}
CHARS = sorted(set("".join(SENTENCES)) | set("的了是一"))


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    lines = [s for s, n in SENTENCES.items() for _ in range(n)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_base(tmp_path: Path) -> Path:
    """A tiny Google-style vocab: [PAD], two [unused], the other specials, characters."""
    path = tmp_path / "base_vocab.txt"
    tokens = ["[PAD]", "[unused1]", "[unused2]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##我"] + CHARS
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def _vocab_lines(out: Path) -> list[str]:
    with open(out / "vocab.txt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _stats(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))


def test_ranked_breaks_ties_by_word():
    assert ranked({"b": 2, "a": 2, "c": 3, "d": 1}, min_count=2) == [("c", 3), ("a", 2), ("b", 2)]


def test_char_vocab_specials_then_count_then_codepoint():
    chars = Counter({"中": 5, "b": 2, "a": 2, " ": 9, "国": 1})
    vocab = char_vocab(chars, min_count=2)
    assert list(vocab) == [*SPECIAL_TOKENS, "中", "a", "b", "##a", "##b"]
    assert list(vocab.values()) == list(range(len(vocab)))


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_stats_from_pieces_equal_real_tokenization_even_with_wordpiece_words(do_lower_case):
    letters = "abcdefghijklmnopqrstuvwxyzNBAXYZ"
    base = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *letters, *("##" + c for c in letters), *"中国人"])}
    vocab = {**base, "nba": len(base), "NBA": len(base) + 1, "中国": len(base) + 2}
    texts = ["nbaxyz 中国nba", "中国人 abc", "NBAXYZ中国人民", "qq"]
    sample = measure_sample(texts, "test", Tokenizer(base, do_lower_case=do_lower_case),
                            CharTokenizer(base, do_lower_case=do_lower_case))
    base_speller = Speller(base, do_lower_case)
    row = tokenizer_stats(sample, vocab, speller_for(vocab, base_speller))
    word = Tokenizer(vocab, do_lower_case=do_lower_case)
    assert row["tokens"] == sum(len(word.encode(t)[0]) - 2 for t in texts)
    assert row["tokens"] < tokenizer_stats(sample, vocab, base_speller)["tokens"]  # nba ##x ##y ##z
    unks = sum(word.encode(t)[0].count(word.unk_id) for t in texts)
    assert unks == 1 and row["unk_rate"] == round(unks / row["tokens"], 6)  # 民
    assert sample.chars == sum(len(t.replace(" ", "")) for t in texts)
    char = CharTokenizer(base, do_lower_case=do_lower_case)
    assert sample.char_tokens == sum(len(char.encode(t)[0]) - 2 for t in texts)


def test_count_corpus_holds_out_every_20th_line_whatever_the_workers(small_corpus, small_base):
    tokenizer = Tokenizer(load_base_vocab(small_base)[0])
    one = count_corpus([small_corpus], tokenizer, workers=1)
    two = count_corpus([small_corpus], tokenizer, workers=2)
    texts = [line.text for line in iter_lines(small_corpus)]
    assert one.held_out == [texts[19]] == two.held_out
    counted = texts[:19] + texts[20:]
    assert one.lines == len(counted) == two.lines
    expected = Counter(piece for text in counted for piece in tokenizer.cut(text))
    assert one.pieces == expected == two.pieces


def test_corpus_words_outputs_and_stats(tmp_path, small_corpus, small_base, caplog):
    user_words = tmp_path / "user.txt"
    user_words.write_text("天气很好\n我们 100 n\n天气很好\n中\nNBA\n", encoding="utf-8")
    out = tmp_path / "out"
    spec = VocabSpec(base_vocab=str(small_base), word_source="corpus", corpus=[str(small_corpus)],
                     num_words=1000, min_count=7, user_words=str(user_words), curve=[0, 1, 2])
    with caplog.at_level("WARNING", logger="wobert.vocab"):
        stats = build_vocab(spec, out)
    assert "only" in caplog.text and "taking all" in caplog.text

    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    base, keep_tokens, _ = load_base_vocab(small_base)
    assert list(base)[:5] == list(SPECIAL_TOKENS) and "##我" not in base
    assert json.loads((out / "keep_tokens.json").read_text()) == keep_tokens
    assert keep_tokens[:5] == [0, 3, 4, 5, 6]

    # user words first (中 is a base token already), then the counted words with count >= 7
    # (他们/上海: 6 lines), ranked by count, then by the word
    lines = _vocab_lines(out)
    words = lines[len(base):]
    assert lines[:len(base)] == list(base)
    assert words[:3] == ["天气很好", "我们", "nba"] and len(set(words)) == len(words)
    top = stats["words"]["top"]
    assert [w for w, _ in top] == words[3:] and "他们" not in words and "上海" not in words
    assert {"喜欢", "北京", "天安门", "中国人民银行"} <= set(words)
    assert all(c >= 7 for _, c in top) and sorted(top, key=lambda x: (-x[1], x[0])) == top
    assert stats["words"]["added"] == len(words) == stats["vocab_size"] - len(base)
    assert stats["words"]["user_words"] == 3

    compound = json.loads((out / "compound_tokens.json").read_text())
    assert compound[2] == [base["[UNK]"]]  # user words are added even if the base lacks them
    assert compound[:2] + compound[3:] == [[base[ch] for ch in w] for w in words[:2] + words[3:]]

    tokenizer = Tokenizer.load(out)
    assert tokenizer.tokenize("今天天气很好") == ["[CLS]", "今", "天", "天气很好", "[SEP]"]
    # the statistics count tokens exactly as the tokenizers do, on the held-out lines
    held_out = [t.text for i, t in enumerate(iter_lines(small_corpus)) if i % 20 == 19]
    char_tokenizer = CharTokenizer(base)
    assert stats["tokenizers"]["word"]["tokens"] == sum(len(tokenizer.tokenize(t)) - 2 for t in held_out)
    assert stats["tokenizers"]["char"]["tokens"] == sum(len(char_tokenizer.tokenize(t)) - 2 for t in held_out)
    assert "vs_jieba_recipe" in stats and "against the jieba-dictionary recipe" in (out / "stats.md").read_text()
    assert (out / "tokens_per_char.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_inputs_give_identical_files_whatever_the_workers(tmp_path, small_corpus, small_base):
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        spec = VocabSpec(base_vocab=str(small_base), word_source="corpus", corpus=[str(small_corpus)],
                         num_words=3, min_count=2, workers=workers, curve=[0, 2])
        build_vocab(spec, out)
        outs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outs[0] == outs[1]


def test_without_base_vocab_the_characters_are_counted(tmp_path, small_corpus):
    out = tmp_path / "out"
    spec = VocabSpec(word_source="corpus", corpus=[str(small_corpus)], num_words=3, min_count=4,
                     max_word_len=2, curve=[0])
    stats = build_vocab(spec, out)
    counted = [t.text for i, t in enumerate(iter_lines(small_corpus)) if i % 20 != 19]
    chars = Counter("".join(counted))
    expected = [ch for ch, n in sorted(chars.items(), key=lambda x: (-x[1], x[0])) if n >= 4]
    lines = _vocab_lines(out)
    assert lines[:-3] == [*SPECIAL_TOKENS, *expected]
    assert "很" not in lines  # 3 times only
    assert lines[-3:] == ["北京", "喜欢", "我们"]  # 12 times each (天安门 is too long), ties by word
    assert not (out / "keep_tokens.json").exists()
    assert stats["base"]["tokens"] == len(lines) - 3
    with pytest.raises(UserError, match=r"no character occurs --min-count 1000 times in the corpus \("):
        build_vocab(replace(spec, min_count=1000), tmp_path / "none")


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


def test_bad_input_is_reported_or_skipped(tmp_path, small_corpus, small_base, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(small_corpus.read_bytes() + b"\xff\xfe\xfd\n" + "北京天安门\n".encode())
    base_args = ["vocab", "build", "--base-vocab", str(small_base), "--word-source", "corpus",
                 "--num-words", "2", "--min-count", "2", "--curve", "0", "--workers", "1"]

    rc, _ = _run([*base_args, "--out", str(tmp_path / "o1"), "--corpus", str(bad)], capsys)
    assert rc == 0
    skipped = _stats(tmp_path / "o1")["corpus"]["skipped"]
    assert skipped["not UTF-8"] == {"lines": 1, "examples": [f"{bad}:30"]}

    rc, err = _run([*base_args, "--out", str(tmp_path / "o2"), "--corpus", str(bad), "--strict"], capsys)
    assert rc == 2 and f"{bad}:30: not UTF-8" in err

    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    rc, err = _run([*base_args, "--out", str(tmp_path / "o3"), "--corpus", str(empty)], capsys)
    assert rc == 2 and "no text" in err and "2 empty" in err

    rc, err = _run([*base_args, "--out", str(tmp_path / "o4"), "--corpus", str(tmp_path / "nope.txt")], capsys)
    assert rc == 2 and "nope.txt" in err

    no_specials = tmp_path / "chars.txt"
    no_specials.write_text("[PAD]\n[UNK]\n我\n", encoding="utf-8")
    rc, err = _run(["vocab", "build", "--base-vocab", str(no_specials), "--out", str(tmp_path / "o5"),
                    "--corpus", str(small_corpus)], capsys)
    assert rc == 2 and "chars.txt" in err and "[CLS]" in err

    with pytest.raises(UserError, match="needs --corpus"):
        VocabSpec(base_vocab=str(small_base), word_source="corpus")
    with pytest.raises(UserError, match=r"vocab config: unknown key\(s\) num_word; known: base_vocab, "):
        VocabSpec.from_config({"num_word": 5, "base_vocab": "v.txt"})


def test_a_killed_counting_worker_ends_the_build_with_one_line(tmp_path, small_base):
    corpus = tmp_path / "big.txt"
    corpus.write_text("".join(f"{s}{i % 97}\n" for i in range(60_000) for s in SENTENCES), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "wobert", "vocab", "build", "--base-vocab",
                             str(small_base), "--word-source", "corpus", "--corpus", str(corpus),
                             "--out", str(tmp_path / "out"), "--workers", "2"],
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: children(proc.pid), proc, "a counting worker")
        os.kill(children(proc.pid)[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert re.match(r"wobert vocab: error: worker process \d+ was killed by SIGKILL", err), err


def test_build_script_reads_a_config_relative_to_data(tmp_path, small_corpus, small_base):
    config = tmp_path / "job.json"
    config.write_text(json.dumps({"base_vocab": small_base.name, "word_source": "corpus",
                                  "corpus": [small_corpus.name], "num_words": 2, "min_count": 2,
                                  "curve": [0]}), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "vocab" / "build.py"), str(config), "--data",
                           str(tmp_path), "--out", str(out), "--num-words", "1", "--workers", "1"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert _stats(out)["words"]["added"] == 1  # the command line overrides the config
    assert "tokens per character" in proc.stdout


# ---------------------------------------------------------------------------------------
# With the shared data: WoBERT's recipe and the corpus recipe
# ---------------------------------------------------------------------------------------


def test_wobert_recipe_on_bert_base_chinese(tmp_path, shared_data, base_vocab_path):
    out = tmp_path / "wobert"
    rc = main(["vocab", "build", "--config", str(REPO / "vocab" / "wobert_jieba.json"), "--data",
               str(shared_data), "--out", str(out), "--curve", "0", "20000", "--workers", "2"])
    assert rc == 0
    lines = _vocab_lines(out)
    assert len(lines) == 33585 == 13585 + 20000
    base, keep_tokens, size = load_base_vocab(base_vocab_path)
    assert size == 21128 and len(base) == 13585 and lines[:13585] == list(base)
    assert json.loads((out / "keep_tokens.json").read_text()) == keep_tokens
    compound = json.loads((out / "compound_tokens.json").read_text())
    assert len(compound) == 20000 and compound[lines.index("中国") - 13585] == [base["中"], base["国"]]

    sentences = [line.text for line in iter_lines(shared_data / "clue" / "tnews" / "dev.json",
                                                    text_field="sentence")]
    word, char = Tokenizer.load(out), CharTokenizer(base)
    word_tokens = sum(len(word.encode(s)[0]) - 2 for s in sentences)
    char_tokens = sum(len(char.encode(s)[0]) - 2 for s in sentences)
    assert word_tokens <= 0.8 * char_tokens
    stats = _stats(out)
    assert stats["tokenizers"]["word"]["tokens"] == word_tokens
    assert stats["tokenizers"]["char"]["tokens"] == char_tokens
    assert stats["reduction_vs_char"] <= -0.2


def test_wobert_recipe_without_corpus_uses_the_builtin_sample(tmp_path, base_vocab_path):
    stats = build_vocab(VocabSpec(base_vocab=str(base_vocab_path), num_words=500, curve=[0, 500],
                                  workers=1), tmp_path)
    assert stats["vocab_size"] == 13585 + 500
    assert stats["sample"]["source"].startswith("built-in") and stats["sample"]["lines"] > 100
    assert stats["reduction_vs_char"] < -0.05


def test_corpus_words_beat_jieba_words_on_held_out_text(tmp_path, shared_data, base_vocab_path):
    corpus = tmp_path / "subset.txt"
    with open(corpus, "w", encoding="utf-8") as f:
        for name in ("peoples_daily_199801.txt", "zhwiki_sampled.txt", "thucnews_cnews_sample.txt"):
            for line in islice(iter_lines(shared_data / "corpus" / name), 1200):
                f.write(line.text + "\n")
    stats = build_vocab(VocabSpec(base_vocab=str(base_vocab_path), word_source="corpus",
                                  corpus=[str(corpus)], num_words=3000, curve=[0, 3000], workers=2),
                        tmp_path / "out")
    assert stats["words"]["added"] == 3000
    assert stats["vs_jieba_recipe"] < 0
    assert stats["tokenizers"]["word"]["tokens_per_char"] < \
        stats["tokenizers"]["jieba recipe (as many words)"]["tokens_per_char"]


def test_a_vocab_without_words_is_a_char_vocab(tmp_path, small_corpus, small_base):
    from wobert.tokenizer import BaseTokenizer, CharTokenizer

    out = tmp_path / "chars"
    build_vocab(VocabSpec(base_vocab=str(small_base), corpus=[str(small_corpus)], num_words=0,
                          curve=[0]), out)
    assert json.loads((out / "compound_tokens.json").read_text()) == []
    assert isinstance(BaseTokenizer.load(out), CharTokenizer)
