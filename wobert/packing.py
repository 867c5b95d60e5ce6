"""Documents to sequences: sentences cut, encoded with their word starts, packed greedily.

A document is cut after sentence ends (。！？, with closing quotes) and at newlines;
consecutive sentences are packed into ``[CLS] tokens [SEP]`` sequences of at most ``maxlen``
tokens. A sentence longer than ``maxlen - 2`` is split across sequences (at a word boundary
where there is one). Sequences never span documents; nothing is dropped.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import re
from typing import Any, Iterable, Iterator

from wobert.segment import get_segmenter
from wobert.tokenizer import BaseTokenizer, Tokenizer, normalize

SENTENCE = re.compile(r".*?(?:[。！？]+[”’」』）)\"']*|\n|$)", re.S)


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after 。！？ (keeping closing quotes) and at newlines; blank pieces dropped."""
    return [s for s in SENTENCE.findall(text) if s.strip()]


class WordEncoder:
    """A sentence's token ids, exactly as ``tokenizer.encode`` gives them, and its word starts.

    With ``whole_words``, a word is a piece of the word tokenizer (a piece outside the
    vocabulary spans several tokens); for a char tokenizer, a jieba word of the normalized
    text, merged with WordPiece ``##`` continuations (as Chinese-BERT-wwm). Without it,
    every token is a word.
    """

    def __init__(self, tokenizer: BaseTokenizer, whole_words: bool = True, cache_size: int = 200_000) -> None:
        self.tokenizer, self.whole_words, self.cache_size = tokenizer, whole_words, cache_size
        self.cache: dict[str, tuple[int, ...]] = {}
        self.normalize = normalize if tokenizer.do_lower_case else str

    def __getstate__(self) -> dict[str, Any]:
        """For spawned workers: the tokenizer and settings; cache and segmenter start anew."""
        return {k: ({} if k == "cache" else v) for k, v in self.__dict__.items() if k != "segmenter"}

    @functools.cached_property
    def segmenter(self) -> Any:
        """jieba (HMM off), for the words of a char tokenizer's text."""
        return get_segmenter()

    def _piece(self, piece: str) -> tuple[int, ...]:
        """The word tokenizer's ids of one of its pieces (each distinct piece encoded once)."""
        ids = self.cache.get(piece)
        if ids is None:
            if len(self.cache) >= self.cache_size:
                self.cache.clear()
            ids = self.cache[piece] = tuple(self.tokenizer.encode(piece)[0][1:-1])
        return ids

    def _pieces(self, text: str) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        starts: list[int] = []
        for piece in map(self._piece, self.tokenizer.cut(text)):
            ids.extend(piece)
            starts.extend((1,) + (0,) * (len(piece) - 1) if piece else ())
        return ids, starts

    def _char_words(self, text: str) -> tuple[list[int], list[int]]:
        """Char tokens aligned to the jieba words of the normalized text by their characters."""
        ids = self.tokenizer.encode(text)[0][1:-1]
        tokens = self.tokenizer.tokenize(text)[1:-1]
        norm = self.normalize(text)
        bounds = list(itertools.accumulate(map(len, self.segmenter.cut(norm))))
        starts, at, word = [], 0, -1
        for token in tokens:
            surface = token[2:] if token.startswith("##") else token
            found = norm.find(surface, at)
            begin = at if found < 0 else found
            at = begin + len(surface)
            this_word = bisect.bisect_right(bounds, begin)
            starts.append(int(this_word != word and not token.startswith("##")))
            word = this_word
        if starts:
            starts[0] = 1
        return ids, starts

    def sentence(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids of a sentence and ``1`` where a word starts, ``0`` inside a word."""
        if not self.whole_words:
            ids = self.tokenizer.encode(text)[0][1:-1]
            return ids, [1] * len(ids)
        if isinstance(self.tokenizer, Tokenizer):
            return self._pieces(text)
        return self._char_words(text)


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
