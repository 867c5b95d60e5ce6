"""Documents to sequences: sentences cut, encoded with their word starts, packed greedily.

A document is cut after sentence ends (。！？, with closing quotes) and at newlines;
consecutive sentences are packed into ``[CLS] tokens [SEP]`` sequences of at most ``maxlen``
tokens. A sentence longer than ``maxlen - 2`` is split across sequences (at a word boundary
where there is one). Sequences never span documents; nothing is dropped.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from wobert.tokenizer import BaseTokenizer

SENTENCE = re.compile(r".*?(?:[。！？]+[”’」』）)\"']*|\n|$)", re.S)


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after 。！？ (keeping closing quotes) and at newlines; blank pieces dropped."""
    return [s for s in SENTENCE.findall(text) if s.strip()]


class WordEncoder:
    """A sentence's token ids, exactly as ``tokenizer.encode`` gives them, and its word starts.

    With ``whole_words``, the words of ``tokenizer.encode_words`` (one C call per sentence):
    a piece of the word tokenizer's cut, or for a char tokenizer a jieba word of the
    normalized text merged with WordPiece ``##`` continuations (as Chinese-BERT-wwm).
    Without it, every token is a word.
    """

    def __init__(self, tokenizer: BaseTokenizer, whole_words: bool = True) -> None:
        self.tokenizer, self.whole_words = tokenizer, whole_words

    def sentence(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids of a sentence and ``1`` where a word starts, ``0`` inside a word."""
        if self.whole_words:
            return self.tokenizer.encode_words(text)
        ids = self.tokenizer.encode(text)[0][1:-1]
        return ids, [1] * len(ids)


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
