"""WoBERT's word tokenizer and BERT's char tokenizer, exact to bert4keras and fast.

The reference is bert4keras 0.11.5::

    Tokenizer(vocab, do_lower_case=True, pre_tokenize=lambda s: jieba.cut(s, HMM=False))

Text is lower-cased and stripped of accents (NFD, combining marks dropped), then cut by
jieba with the HMM off. A piece found in the vocabulary stays one token; any other piece
is tokenized at character level: CJK characters and punctuation alone, control
characters dropped, then WordPiece, ``[UNK]`` for a word that has no pieces.
``CharTokenizer`` is that character level alone: bert4keras's ``Tokenizer(vocab,
do_lower_case=True)``, BERT's own tokenizer.

Speed: ``encode`` and ``encode_batch`` are one C call per chunk of texts
(``wobert._wordcut``): normalization through ``normalize_table`` (Python's ``normalize``
for the rare text it does not cover), jieba's cut (word level), the vocabulary lookup, the
char level through ``char_classes``, WordPiece, truncation and the result lists. Both
tables are built here from Python's ``unicodedata``, so C classifies every character as
bert4keras does (tests check every code point). ``tokenize`` (the tokens' strings) and
``encode_words`` (ids and word starts, for whole-word masking) are one C call each, on the
same code: there is one WordPiece.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import os
import re
import sys
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wobert._wordcut import WordCutter
from wobert.checks import POSITIVE, check_input_file, check_output_dir, number
from wobert.errors import UserError
from wobert.segment import UserWord, check_user_words, get_segmenter
from wobert.vocabdir import CONFIG_FILE, SPECIAL_TOKENS, VOCAB_FILE, VocabDir, check_vocab, read_vocab

PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
#: the special tokens under transformers' names (special_tokens_map.json)
SPECIAL_TOKENS_MAP = {"pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP,
                      "mask_token": MASK}
#: bert4keras's ``word_maxlen``: a longer word is one ``[UNK]``.
MAX_WORD_CHARS = 200

_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# bert4keras's CJK punctuation, after which ``decode`` puts no space.
_CJK_PUNCTUATION = (
    "＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､\u3000、〃〈〉《》「」『』【】〔〕〖〗"
    "〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏﹑﹔·！？｡。"
)


def _char_class(ranges: Iterable[tuple[int, int]]) -> re.Pattern:
    """A regex matching one character in the code point ranges."""
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


@functools.lru_cache(maxsize=1)
def combining_marks() -> tuple[re.Pattern, dict[int, None]]:
    """Characters of category Mn (planes 0-3 and 14 hold them all): a regex matching those
    in the BMP or any astral character (where the rest lie), and a ``str.translate`` table
    that deletes them all."""
    marks = [c for block in (range(0x40000), range(0xE0000, 0xF0000)) for c in block
             if unicodedata.category(chr(c)) == "Mn"]
    ranges = [(group[0][1], group[-1][1]) for _, group in
              itertools.groupby(enumerate(marks), key=lambda p: p[1] - p[0])
              for group in [list(group)]]
    bmp = [r for r in ranges if r[1] < 0x10000]
    return _char_class(bmp + [(0x10000, 0x10FFFF)]), dict.fromkeys(marks)


def normalize(text: str) -> str:
    """Lower-case, decompose (NFD) and drop combining marks: bert4keras's lowercase_and_normalize."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFD", text.lower())
    maybe_marks, delete_marks = combining_marks()
    if maybe_marks.search(text):
        text = text.translate(delete_marks)
    return text


# normalize_table's marks: the character goes, or a text holding it needs ``normalize``.
_NORMAL_DROP, _NORMAL_PYTHON = 0xFFFFFFFE, 0xFFFFFFFF


@functools.lru_cache(maxsize=1)
def normalize_table() -> array:
    """``normalize`` per BMP character, for the C side: the one character it becomes,
    _NORMAL_DROP where it goes, or _NORMAL_PYTHON where a text holding it needs ``normalize``
    itself: where the result depends on the neighbours (a final sigma, combining marks
    other than Mn, which NFD may reorder) or is several characters (Hangul syllables)."""
    table = array("I", [_NORMAL_PYTHON]) * 0x10000
    for code in range(0x10000):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF or ch == "\u03a3":
            continue
        nfd = unicodedata.normalize("NFD", ch.lower())
        if any(unicodedata.combining(c) and unicodedata.category(c) != "Mn" for c in nfd):
            continue
        normal = normalize(ch)
        if len(normal) <= 1:
            table[code] = ord(normal) if normal else _NORMAL_DROP
    return table


def is_cjk(ch: str) -> bool:
    """Whether ``ch`` is a CJK character (the ranges BERT splits one by one)."""
    code = ord(ch)
    return any(a <= code <= b for a, b in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
            or unicodedata.category(ch).startswith("P"))


def _is_dropped(ch: str) -> bool:
    """Characters bert4keras's char level removes: NUL, U+FFFD and controls (not \\t \\n \\r)."""
    return ch not in "\t\n\r" and (ch in "\0\ufffd" or unicodedata.category(ch) in ("Cc", "Cf"))


@functools.lru_cache(maxsize=1)
def _char_table() -> dict[int, str | None]:
    """``str.translate`` table of bert4keras's char level: punctuation and CJK characters get
    spaces around them, dropped characters go; ``str.split`` then gives its words.

    Punctuation and controls lie in planes 0, 1 and 14 (tests check the whole range).
    """
    table: dict[int, str | None] = {}
    for code in itertools.chain(range(0x20000), range(0xE0000, 0xF0000)):
        ch = chr(code)
        if _is_punctuation(ch):
            table[code] = f" {ch} "
        elif _is_dropped(ch):
            table[code] = None
    for start, end in _CJK_RANGES:
        table.update((code, f" {chr(code)} ") for code in range(start, end + 1))
    return table


@functools.lru_cache(maxsize=1)
def char_classes() -> bytes:
    """``_char_table`` and ``str.split`` (bert4keras's char-level words of a normalized text)
    as one byte per code point, for the C char level: 0 a word's
    character, 1 a token of its own (punctuation, CJK), 2 a space (``str.split``'s, all in
    the BMP), 3 dropped."""
    classes = bytearray(0x110000)
    for code, spaced in _char_table().items():
        classes[code] = 3 if spaced is None else 1
    for code in range(0x10000):
        if not classes[code] and chr(code).isspace():
            classes[code] = 2
    return bytes(classes)


def _check_text(text: Any, name: str = "text") -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, not {type(text).__name__}")


def _check_texts(texts: list[Any], pairs: list[Any] | None) -> None:
    for name, items in (("first", texts), ("second", pairs or ())):
        for text in items:
            _check_text(text, name)


# ---------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------


def is_redundant(token: str) -> bool:
    """bert4keras: a multi-character token with a CJK or punctuation character in its stem."""
    stem = token[2:] if token[:2] == "##" else token
    return len(token) > 1 and any(is_cjk(ch) or _is_punctuation(ch) for ch in stem)


def simplify_vocab(token_dict: Mapping[str, int]) -> tuple[dict[str, int], list[int]]:
    """bert4keras ``load_vocab(simplified=True, startswith=SPECIAL_TOKENS)``.

    Returns the new token -> id and ``keep_tokens`` (the old id of each new id): the special
    tokens first, then every token the char tokenizer can produce, in old id order.
    """
    check_vocab(token_dict)
    new: dict[str, int] = {}
    keep: list[int] = []
    specials = [(t, token_dict[t]) for t in SPECIAL_TOKENS]
    rest = sorted(token_dict.items(), key=lambda item: item[1])
    for token, old_id in specials + [(t, i) for t, i in rest if not is_redundant(t)]:
        if token not in new:
            new[token] = len(new)
            keep.append(old_id)
    return new, keep


def extend_vocab(token_dict: Mapping[str, int], words: Iterable[str]) -> dict[str, int]:
    """``token_dict`` plus each word not yet in it, with the next ids, in the given order."""
    extended = dict(token_dict)
    for word in words:
        extended.setdefault(word, len(extended))
    return extended


def _load_source(vocab: Any) -> tuple[dict[str, int], dict[str, Any]]:
    """(token dict, saved config) from a vocab.txt path, a token dict or a tokenizer directory."""
    if isinstance(vocab, Mapping):
        check_vocab(vocab)
        return dict(vocab), {}
    if not isinstance(vocab, (str, os.PathLike)):
        raise TypeError(f"vocab must be a path or a token->id dict, not {type(vocab).__name__}")
    path = Path(vocab)
    if not path.is_dir():
        return read_vocab(path), {}
    directory = VocabDir(path)
    return directory.read_tokens(), directory.read_config()


# ---------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_unicode(name: str, err: UnicodeEncodeError) -> ValueError:
    """The error for a lone surrogate (the C cutter and WordPiece raise UnicodeEncodeError)."""
    return ValueError(f"{name} is not valid Unicode: it has a lone surrogate "
                      f"{err.object[err.start]!r} (decode with errors='replace')")


def _check_maxlen(maxlen: int | None) -> None:
    if maxlen is not None and (not isinstance(maxlen, int) or isinstance(maxlen, bool) or not 2 <= maxlen < 2**31):
        raise UserError(f"maxlen must be an integer from 2 (room for [CLS] and [SEP]) to 2**31 - 1, not {maxlen!r}")


def _with_ends(body: Sequence, start: Sequence, end: Sequence, length: int | None = None) -> Sequence:
    """``start + body + end`` cut to ``length`` items by dropping those before ``end``."""
    whole = start + body
    if length is not None:
        whole = whole[:length - 1]
    return whole + end


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens joined into readable text as bert4keras's ``decode`` joins them: ``##`` pieces
    glued on, no space around CJK characters, none after CJK punctuation."""
    text = ""
    for i, token in enumerate(tokens):
        if token[:2] == "##":
            text += token[2:]
        elif len(token) == 1 and is_cjk(token):
            text += token
        elif len(token) == 1 and _is_punctuation(token):
            text += token + " "
        elif i > 0 and text and is_cjk(text[-1]):
            text += token
        else:
            text += " " + token
    text = re.sub(" +", " ", text)
    text = re.sub("' (re|m|s|t|ve|d|ll) ", "'\\1 ", text)
    glued = "|".join(map(re.escape, _CJK_PUNCTUATION + "+-/={(<["))
    text = re.sub(f"({glued}) ", "\\1", text)
    text = re.sub(r"(\d\.) (\d)", "\\1\\2", text)
    return text.strip()


class BaseTokenizer:
    """What the word and char tokenizers share: vocabulary, specials, encode, decode, save."""

    level = ""

    def __init__(self, vocab: Any, do_lower_case: bool | None = None, **config: Any):
        token_dict, saved = _load_source(vocab)
        if saved.get("level", self.level) != self.level:
            raise UserError(f"{vocab} holds a {saved['level']}-level tokenizer; "
                             f"load it with Tokenizer.load")
        if do_lower_case is None:
            do_lower_case = saved.get("do_lower_case", True)
        self.config = {**saved, **{k: v for k, v in config.items() if v is not None}}
        self.token_dict = token_dict
        self.do_lower_case = bool(do_lower_case)
        self._normalize: Callable[[str], str] = normalize if self.do_lower_case else str
        self._tokens = {i: t for t, i in token_dict.items()}
        self.unk_id, self.cls_id, self.sep_id = (token_dict[t] for t in (UNK, CLS, SEP))
        self.pad_id, self.mask_id = token_dict[PAD], token_dict[MASK]
        self._cutter: WordCutter  # set by the subclass, with _vocab_cutter

    def _vocab_cutter(self, cutter: WordCutter) -> WordCutter:
        """``cutter`` copied with this vocabulary and normalization: ``encode`` in C."""
        return cutter.with_vocab(
            self.token_dict.items(), self.unk_id, self.cls_id, self.sep_id, MAX_WORD_CHARS,
            char_classes(), *((normalize, normalize_table()) if self.do_lower_case else ()))

    @property
    def vocab_size(self) -> int:
        return len(self.token_dict)

    def token_to_id(self, token: str) -> int:
        """The token's id; the ``[UNK]`` id for a token not in the vocabulary."""
        return self.token_dict.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        try:
            return self._tokens[token_id]
        except (KeyError, TypeError):
            raise ValueError(f"token id {token_id!r} is not in the vocabulary") from None

    def tokenize(self, text: str, maxlen: int | None = None) -> list[str]:
        """``[CLS]``, the tokens of ``text``, ``[SEP]``; cut to ``maxlen`` like bert4keras.

        A token is its vocabulary string, an ``[UNK]`` one the characters it stands for.
        """
        _check_text(text)
        _check_maxlen(maxlen)
        try:
            tokens = self._cutter.tokenize([text], self.level == "word")[0]
        except UnicodeEncodeError as err:
            raise _not_unicode("text", err) from None
        return _with_ends(tokens, [CLS], [SEP], maxlen)

    def encode_words(self, text: str) -> tuple[list[int], list[int]]:
        """The token ids of ``text`` (``encode``'s, without [CLS] and [SEP]) and ``1`` for a
        token that starts a word, ``0`` for one inside a word (whole-word masking): see the
        subclass for what a word is."""
        _check_text(text)
        try:
            return self._words_cutter.encode_words([text], self.level == "word")[0]
        except UnicodeEncodeError as err:
            raise _not_unicode("text", err) from None

    @property
    def _words_cutter(self) -> WordCutter:
        """The C cutter whose cut gives ``encode_words`` its words."""
        return self._cutter

    def encode(self, first: str, second: str | None = None,
               maxlen: int | None = None) -> tuple[list[int], list[int]]:
        """``(token_ids, segment_ids)`` of a text or a text pair, as bert4keras's ``encode``.

        A pair is ``[CLS] first [SEP] second [SEP]``; over ``maxlen`` tokens, tokens before
        the ``[SEP]`` of the longer text are dropped (the first text's on ties).
        """
        _check_maxlen(maxlen)
        texts, pairs = [first], None if second is None else [second]
        _check_texts(texts, pairs)
        return self._encode_all(texts, pairs, maxlen)[0]

    def _encode_all(self, texts: list[str], pairs: list[str] | None,
                    maxlen: int | None) -> list[tuple[list[int], list[int]]]:
        """``encode`` of each text (and pair), in one call of the C cutter, which releases
        the GIL while it cuts and looks up."""
        try:
            return self._cutter.encode(texts, pairs, maxlen or 0, self.level == "word")
        except UnicodeEncodeError as err:
            name = "first" if any(map(_LONE_SURROGATE.search, texts)) else "second"
            raise _not_unicode(name, err) from None

    def encode_batch(self, texts: Iterable[str], pairs: Iterable[str] | None = None,
                     maxlen: int | None = None,
                     workers: int = 1) -> list[tuple[list[int], list[int]]]:
        """``[encode(text, pair, maxlen) ...]``, in ``workers`` threads (word level).

        The threads run in parallel: the C cutter, where the word level's time goes, releases
        the GIL. The char level takes one thread whatever ``workers`` says: its time goes
        into building the lists of ids, which holds the GIL.
        """
        if isinstance(texts, str) or isinstance(pairs, str):
            raise TypeError("encode_batch takes lists of texts, not a str (encode takes one text)")
        texts = list(texts)
        pairs = None if pairs is None else list(pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        _check_maxlen(maxlen)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, not {workers!r}")
        _check_texts(texts, pairs)
        bounds = _chunks(texts, pairs)
        firsts = [texts[a:b] for a, b in bounds]
        seconds = [None if pairs is None else pairs[a:b] for a, b in bounds]
        maxlens = itertools.repeat(maxlen)
        with _cycle_collector_paused():
            if workers == 1 or len(bounds) < 2 or self.level == "char":
                encoded = list(map(self._encode_all, firsts, seconds, maxlens))
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="wobert-encode") as pool:
                    encoded = list(pool.map(self._encode_all, firsts, seconds, maxlens))
            return list(itertools.chain.from_iterable(encoded))

    def decode(self, ids: Iterable[int]) -> str:
        """Readable text: bert4keras's ``decode`` (special tokens dropped, ``##`` joined)."""
        return join_tokens([t for t in map(self.id_to_token, ids) if not (t[:1] == "[" and t[-1:] == "]")])

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` into ``directory``."""
        target = VocabDir(check_output_dir(directory, "tokenizer directory"))
        target.write_tokens(self.token_dict)
        target.write_config({**self.config, "level": self.level, "do_lower_case": self.do_lower_case})
        return target.path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> BaseTokenizer:
        """The tokenizer ``save`` wrote (word or char level, as saved)."""
        if Path(directory).is_file():
            raise UserError(f"{directory} is a file: load takes the directory that save wrote "
                            "(a vocab.txt alone: Tokenizer(path) or CharTokenizer(path))")
        config = VocabDir(directory).read_config()
        if not config:
            raise FileNotFoundError(f"no tokenizer directory (with {CONFIG_FILE}): {directory}")
        level = config.get("level")
        if level not in _LEVELS:
            raise UserError(f"{directory}/{CONFIG_FILE}: unknown level {level!r}")
        return _LEVELS[level](directory)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, "
                f"do_lower_case={self.do_lower_case})")

    def __reduce__(self) -> tuple:
        """Pickle the vocabulary and settings; the segmenter and caches are rebuilt."""
        return _rebuild, (type(self), self.token_dict, self.do_lower_case, self.config)


def _rebuild(cls: type, token_dict: dict, do_lower_case: bool, config: dict) -> BaseTokenizer:
    extra = {"user_words": config.get("user_words") or ()} if cls is Tokenizer else {}
    tokenizer = cls(token_dict, do_lower_case=do_lower_case, **extra)
    tokenizer.config = dict(config)
    return tokenizer


class CharTokenizer(BaseTokenizer):
    """BERT's character-level tokenizer: bert4keras ``Tokenizer(vocab, do_lower_case=True)``.

    ``vocab``: a vocab.txt path, a token -> id dict, or a directory written by ``save``.
    ``encode_words``'s words are jieba's (HMM off) of the normalized text, each merged with
    the WordPiece ``##`` pieces that continue it (as Chinese-BERT-wwm).
    """

    level = "char"

    def __init__(self, vocab: Any, *, do_lower_case: bool | None = None):
        super().__init__(vocab, do_lower_case)
        self._cutter = self._vocab_cutter(WordCutter((), 1))  # no words: the char level only

    @functools.cached_property
    def _words_cutter(self) -> WordCutter:
        """The char level on jieba's dictionary, built on first use (the cut gives the words)."""
        return self._vocab_cutter(get_segmenter().cutter)


class Tokenizer(BaseTokenizer):
    """WoBERT's word-level tokenizer: jieba words (HMM off) on BERT's char tokenization.

    ``vocab``: a vocab.txt path, a token -> id dict, or a directory written by ``save``
    (its saved settings are the defaults). ``user_words``: domain words jieba must cut
    whole (``"word"`` or ``(word, frequency)``, as ``jieba.add_word``, or a word -> frequency
    mapping), for this tokenizer only; with ``do_lower_case`` they must be given lower-cased.
    ``encode_words``'s words are the pieces of the cut (one piece outside the vocabulary spans
    several tokens).
    """

    level = "word"

    def __init__(self, vocab: Any, *, do_lower_case: bool | None = None,
                 user_words: Iterable[UserWord] | Mapping[str, int | None] | None = None):
        super().__init__(vocab, do_lower_case, segmenter="jieba-hmm-off")
        if user_words is None:  # the saved ones
            try:
                user_words = check_user_words(self.config.get("user_words"))
            except UserError as err:
                raise UserError(f"{vocab}/{CONFIG_FILE}: {err}") from None
        else:
            user_words = check_user_words(user_words)
        for word, _ in user_words:
            if self._normalize(word) != word:
                raise UserError(f"user word {word!r} can never match: text is normalized "
                                 f"first; give it as {self._normalize(word)!r}")
        self._segmenter = get_segmenter(user_words)
        self.config["user_words"] = [list(w) for w in self._segmenter.user_words]
        self._cutter = self._vocab_cutter(self._segmenter.cutter)

    @property
    def user_words(self) -> list[tuple[str, int]]:
        """The user words with the jieba frequency each was given."""
        return list(self._segmenter.user_words)

    def cut(self, text: str) -> list[str]:
        """The normalized text cut by jieba (HMM off): the pieces before the vocabulary lookup."""
        _check_text(text)
        try:
            return self._segmenter.cut(self._normalize(text))
        except UnicodeEncodeError as err:
            raise _not_unicode("text", err) from None


_LEVELS = {"word": Tokenizer, "char": CharTokenizer}


def load_tokenizer(vocab: str | Path) -> BaseTokenizer:
    """The tokenizer saved in a vocabulary or model directory (``tokenizer_config.json`` with a
    ``level``), else BERT's char tokenizer of the ``vocab.txt`` (a file, or a directory holding
    one: a Google BERT directory, or a Hugging Face one, whose ``do_lower_case`` it keeps)."""
    path = Path(vocab)
    config = VocabDir(path).read_config() if path.is_dir() else {}
    if "level" in config:
        return BaseTokenizer.load(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary not found: {path}")
    return CharTokenizer(path, do_lower_case=config.get("do_lower_case", True))


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------

#: characters per call of the C cutter in ``encode_batch``: a few milliseconds of work, so
#: threads take turns often, and buffers small enough to be reused rather than mapped anew.
CHUNK_CHARS = 16_384


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector during a batch, whose results are many lists without
    cycles: it would traverse them again and again as they pile up (half a batch's time).

    After the batch, its objects go straight to the oldest generation (``gc.freeze`` then
    ``gc.unfreeze``) where no objects were frozen before: otherwise the first young
    collection would traverse them all at once (a third of a batch's time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _chunks(texts: list[str], pairs: list[str] | None) -> list[tuple[int, int]]:
    """Index ranges of about CHUNK_CHARS characters each (by the average text length)."""
    chars = sum(map(len, texts)) + (sum(map(len, pairs)) if pairs else 0)
    size = max(1, CHUNK_CHARS * len(texts) // max(1, chars))
    return [(start, min(start + size, len(texts))) for start in range(0, len(texts), size)]


# ---------------------------------------------------------------------------------------
# wobert tokenize
# ---------------------------------------------------------------------------------------

_CLI_BATCH = 20_000


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Tokenize text, one output line per input line: tokens separated by spaces, or "
        "token ids with --ids. Word level (jieba words on BERT characters, as WoBERT) "
        "unless --char. Output includes [CLS] and [SEP]; unknown words show as [UNK].")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="UTF-8 text files, one text per line ('-' or none: stdin)")
    parser.add_argument("--vocab", required=True,
                        help="vocab.txt, or a tokenizer directory written by `wobert vocab`")
    parser.add_argument("--char", action="store_true",
                        help="character level (BERT's tokenizer) instead of words")
    parser.add_argument("--ids", action="store_true", help="write token ids, not tokens")
    parser.add_argument("--maxlen", type=number(int, 2), default=None,
                        help="cut each line to this many tokens, [CLS] and [SEP] included")
    parser.add_argument("--workers", type=POSITIVE, default=1,
                        help="threads for the word level (default 1)")
    parser.add_argument("--user-words", metavar="FILE", default=None,
                        help="domain words to cut whole, jieba user-dict format: word [freq] [tag]")


def read_user_words(path: str | os.PathLike) -> list[tuple[str, int | None]]:
    """A jieba user dictionary (``word [freq] [tag]`` per line) as (word, frequency) pairs."""
    words = []
    line_format = re.compile(r"(.+?)(?: ([0-9]+))?(?: [a-z]+)?")
    try:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise UserError(f"{path}: line {lineno}: not UTF-8 text") from None
                if line:
                    word, freq = line_format.fullmatch(line).groups()
                    try:
                        words += check_user_words([(word, None if freq is None else int(freq))])
                    except ValueError as err:
                        raise UserError(f"{path}: line {lineno}: {err}") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"user words file not found: {path}") from None
    return words


def _read_lines(files: Sequence[str]) -> Iterator[str]:
    """Lines of the files (stdin for none or '-'), split on \\n only; UserError on bad UTF-8."""
    for name in files or ["-"]:
        stream = sys.stdin.buffer if name == "-" else open(name, "rb")
        try:
            for lineno, raw in enumerate(stream, 1):
                try:
                    yield raw.decode("utf-8").rstrip("\n").removesuffix("\r")
                except UnicodeDecodeError:
                    raise UserError(f"{name}: line {lineno}: not valid UTF-8") from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def run_cli(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    for name in args.files:
        if name != "-":
            check_input_file(name, "input file")
    vocab = Path(args.vocab)
    if args.char or (vocab.is_dir() and VocabDir(vocab).read_config().get("level") == "char"):
        if args.user_words:
            raise UserError("--user-words needs the word level (drop --char)")
        tokenizer: BaseTokenizer = CharTokenizer(vocab)
    else:
        user_words = read_user_words(args.user_words) if args.user_words else None
        tokenizer = Tokenizer(vocab, user_words=user_words)
    out = sys.stdout
    lines = _read_lines(args.files)
    with tqdm(unit=" lines", disable=None, file=sys.stderr) as progress:
        while batch := list(itertools.islice(lines, _CLI_BATCH)):
            for ids, _ in tokenizer.encode_batch(batch, maxlen=args.maxlen, workers=args.workers):
                out.write(" ".join(map(str, ids) if args.ids else map(tokenizer.id_to_token, ids)))
                out.write("\n")
            progress.update(len(batch))
    out.flush()
    return 0
