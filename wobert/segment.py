"""Jieba word segmentation with the HMM off: the pre-tokenizer of WoBERT's word tokenizer.

Two backends give the same cut (``jieba.Tokenizer().cut(text, HMM=False)``):

- ``native`` (``wobert._wordcut``, C, built at install), the default: jieba's word graph
  and best path over a trie of jieba's ``dict.txt`` with jieba's frequency total (which
  counts a word again each time a line or ``add_word`` repeats it). The word tokenizer
  copies its ``cutter`` with the vocabulary added, and gets its ids from it.
- ``jieba`` (pure Python), the reference, to check the native cut against.

User words go into a private dictionary, never into jieba's global one, with the frequency
``jieba.Tokenizer.add_word`` gives them.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from wobert import _wordcut
from wobert.errors import UserError

BACKENDS = ("native", "jieba")

#: the only characters jieba joins into words (its ``re_han_default``); others are cut alone.
WORD_CHARS = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+")
MAX_FREQUENCY = 10**12  # far above any dictionary's (jieba's words sum to ~6e7); the C core sums them

UserWord = str | Sequence  # "word" or (word, frequency or None)


@functools.lru_cache(maxsize=1)
def jieba_dictionary() -> tuple[Mapping[str, int], int]:
    """jieba's ``dict.txt``: word -> frequency (the last line wins) and jieba's total.

    The total sums every line, as jieba's ``gen_pfdict`` does.
    """
    import jieba

    freq: dict[str, int] = {}
    total = 0
    with jieba.Tokenizer().get_dict_file() as f:  # the default dictionary, whatever the global one
        name = getattr(f, "name", "jieba dict.txt")
        for lineno, line in enumerate(f.read().split(b"\n"), 1):
            line = line.strip().decode("utf-8")  # bytes.strip: ASCII whitespace only, as jieba
            if not line:
                continue
            try:
                word, count = line.split(" ")[:2]
                freq[word] = int(count)
            except ValueError:
                raise UserError(f"{name}: line {lineno}: not 'word freq [tag]': {line!r}") from None
            total += freq[word]
    return MappingProxyType(freq), total


def jieba_words(n: int, exclude: Iterable[str] = ()) -> list[str]:
    """The ``n`` most frequent words of jieba's dictionary not in ``exclude``.

    Ordered by descending frequency, ties by the word itself.
    """
    freq, _ = jieba_dictionary()
    exclude = set(exclude)
    words = sorted((w for w in freq if w not in exclude), key=lambda w: (-freq[w], w))
    return words[:n]


def check_user_words(user_words: Iterable[UserWord] | Mapping[str, int | None] | None,
                     ) -> tuple[tuple[str, int | None], ...]:
    """User words (words, ``(word, frequency)`` pairs, or a word -> frequency mapping) as
    ``(word, frequency or None)`` pairs; ValueError for a word jieba never cuts whole or a
    frequency that is not a positive integer."""
    if isinstance(user_words, str):
        raise UserError(f"user words are a list of words, not the string {user_words!r}")
    items = user_words.items() if isinstance(user_words, Mapping) else user_words or ()
    checked = []
    for item in items:
        if isinstance(item, str):
            word, freq = item, None
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            word, freq = item
        else:
            raise UserError(f"user word {item!r}: expected a word or a (word, frequency) pair")
        if not isinstance(word, str) or not WORD_CHARS.fullmatch(word):
            raise UserError(
                f"user word {word!r} can never be cut whole: jieba joins only CJK characters "
                "U+4E00-U+9FD5, ASCII letters, digits and + # & . _ % -"
            )
        whole = isinstance(freq, int) and not isinstance(freq, bool) or isinstance(freq, float) and freq.is_integer()
        if freq is not None and not (whole and 1 <= freq <= MAX_FREQUENCY):
            raise UserError(f"user word {word!r}: frequency must be an integer from 1 to {MAX_FREQUENCY:,}, "
                            f"not {freq!r}")
        checked.append((word, None if freq is None else int(freq)))
    return tuple(checked)


def _python_jieba(user_words: Sequence[tuple[str, int | None]]):
    """A private ``jieba.Tokenizer`` with the user words added in order."""
    import jieba

    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    for word, freq in user_words:
        segmenter.add_word(word, freq)
    return segmenter


def resolve_user_words(user_words: Sequence[tuple[str, int | None]]) -> tuple[tuple[str, int], ...]:
    """Give each user word the frequency ``jieba.Tokenizer.add_word`` gives it, in order."""
    if all(freq is not None for _, freq in user_words):
        return tuple(user_words)
    segmenter = _python_jieba(())
    resolved = []
    for word, freq in user_words:
        freq = segmenter.suggest_freq(word) if freq is None else freq
        segmenter.add_word(word, freq)
        resolved.append((word, freq))
    return tuple(resolved)


class JiebaSegmenter:
    """jieba's HMM-off cut, with optional user words; see the module docstring.

    ``cut(text) -> list[str]``: the words of ``text`` (they concatenate back to it). It is
    the backend's own callable, so a call costs no extra Python frame.
    """

    def __init__(self, user_words: Iterable[UserWord] | None = None, backend: str = "native"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown segmenter backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        self.user_words = resolve_user_words(check_user_words(user_words))
        self.cut: Callable[[str], list[str]]
        self.cutter: _wordcut.WordCutter | None = None  # the native backend's
        if backend == "native":
            words, total = _dictionary_with(self.user_words)
            self.cutter = _wordcut.WordCutter(words.items(), total)
            self.cut = self.cutter.cut
        else:
            python_jieba = _python_jieba(self.user_words)
            self.cut = lambda text: list(python_jieba.cut(text, HMM=False))


def _dictionary_with(user_words: Sequence[tuple[str, int]]) -> tuple[dict[str, int], int]:
    """jieba's dictionary with the user words added, and jieba's total for it (which counts
    a user word's frequency again even where the word was in the dictionary)."""
    freq, total = jieba_dictionary()
    merged = dict(freq)
    for word, count in user_words:
        merged[word] = count
        total += count
    return merged, total


@functools.lru_cache(maxsize=8)
def get_segmenter(user_words: tuple = (), backend: str = "native") -> JiebaSegmenter:
    """A shared ``JiebaSegmenter`` per (user words, backend)."""
    return JiebaSegmenter(user_words, backend)
