"""WoBERT's word tokenizer for Hugging Face transformers: ``WoBertTokenizer``.

A ``PreTrainedTokenizer`` whose ids come from ``wobert.Tokenizer`` (the C tokenizer, exact to
bert4keras): ``__call__`` on texts, pairs and batches with padding, truncation (the longer text
loses tokens first, as in bert4keras), ``return_tensors``, ``return_offsets_mapping`` and
``return_special_tokens_mask``; ``save_pretrained``/``from_pretrained``; pickling (DataLoader
workers); user words. It needs transformers and the tokenizer part of wobert, not TensorFlow.

``save_pretrained`` writes ``vocab.txt`` and one ``tokenizer_config.json`` that both
transformers and ``wobert.Tokenizer.load`` read (their keys differ), ``special_tokens_map.json``,
``tokenization_wobert.py`` (it imports this class) named in ``auto_map``, so that
``AutoTokenizer.from_pretrained(dir, trust_remote_code=True)`` gives this tokenizer, and a
``tokenizer.json`` guard (``wobert.tokenizer_json``): transformers' own tokenizers
(``AutoTokenizer`` without remote code, ``BertTokenizer``) refuse it with a message saying how
to load the directory, rather than tokenize by characters without a word.

A text that holds a special or added token (``[MASK]``, ...) is cut around it, as transformers
does; with ``split_special_tokens=True`` it is tokenized as text, as ``wobert.Tokenizer`` does.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import BatchEncoding, PreTrainedTokenizer
from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

from wobert.jsonfile import write_json
from wobert.tokenizer import SPECIAL_TOKENS_MAP, Tokenizer, char_classes, join_tokens, normalize
from wobert.tokenizer_json import TOKENIZER_JSON, write_guard
from wobert.vocabdir import VOCAB_FILE, write_vocab

SHIM_FILE = "tokenization_wobert.py"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
AUTO_MAP = {"AutoTokenizer": [f"{Path(SHIM_FILE).stem}.WoBertTokenizer", None]}
SHIM_SOURCE = '''"""WoBERT's word tokenizer for transformers; the class lives in the wobert package."""
from wobert.hf import WoBertTokenizer

__all__ = ["WoBertTokenizer"]
'''
Spans = list[tuple[int, int]]


@functools.lru_cache(maxsize=16)
def _alternation(tokens: tuple[str, ...]) -> re.Pattern:
    """A regex finding any of ``tokens``, the longest first."""
    return re.compile("|".join(map(re.escape, sorted(tokens, key=len, reverse=True))))


def _truncate(first: list, second: list | None, maxlen: int | None) -> None:
    """bert4keras's ``truncate_sequences(maxlen, -2, first, second)``: drop the token before the
    final [SEP] of the longer sequence (the first on ties) until both fit in ``maxlen``."""
    sequences = [first] + ([second] if second else [])
    while maxlen is not None and sum(map(len, sequences)) > maxlen:
        del max(sequences, key=len)[-2]


def _spans(text: str, tokens: Sequence[str], lower: bool) -> Spans:
    """Character spans in ``text`` of the ``tokens`` the tokenizer made of it (without [CLS] and
    [SEP]). Tokens follow one another in the normalized text but for spaces and dropped
    characters; the text is normalized character by character, which gives the same lengths."""
    pieces = [normalize(ch) for ch in text] if lower else list(text)
    owner = [i for i, piece in enumerate(pieces) for _ in piece]  # normalized index -> text index
    normal, classes, spans, pos = "".join(pieces), char_classes(), [], 0
    for token in tokens:
        body = token[2:] if token[:2] == "##" and len(token) > 2 else token
        while pos < len(normal) and classes[ord(normal[pos])] >= 2:  # a space or a dropped character
            pos += 1
        end = min(pos + len(body), len(normal))
        spans.append((owner[pos], owner[end - 1] + 1) if end > pos else (len(text), len(text)))
        pos = end
    return spans


class WoBertTokenizer(PreTrainedTokenizer):
    """WoBERT's word tokenizer (jieba words, HMM off, on BERT's char tokenizer) for transformers.

    ``vocab_file``: a vocab.txt; ``do_lower_case`` and ``user_words`` as ``wobert.Tokenizer``.
    Other keys of a wobert ``tokenizer_config.json`` are kept and saved again.
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file: str, do_lower_case: bool = True,
                 user_words: Sequence | None = None, **kwargs: Any) -> None:
        level = kwargs.pop("level", "word")
        if level != "word":
            raise ValueError(f"{vocab_file}: a {level}-level tokenizer; BertTokenizer is BERT's "
                             "char tokenizer")
        self._wobert = Tokenizer(vocab_file, do_lower_case=do_lower_case, user_words=user_words)
        for name, token in SPECIAL_TOKENS_MAP.items():
            kwargs.setdefault(name, token)
        for option in ("is_local", "local_files_only"):  # how it was loaded, not what it is
            kwargs.pop(option, None)
        super().__init__(do_lower_case=do_lower_case, level=level,
                         user_words=self._wobert.config["user_words"],
                         special_tokens_pattern="cls_sep", **kwargs)
        self._auto_class = None  # save_pretrained ships the shim, not this module's file
        self._auto_map = AUTO_MAP

    @property
    def wobert_tokenizer(self) -> Tokenizer:
        """The ``wobert.Tokenizer`` behind this tokenizer."""
        return self._wobert

    @property
    def do_lower_case(self) -> bool:
        return self._wobert.do_lower_case

    @property
    def vocab_size(self) -> int:
        return self._wobert.vocab_size

    def get_vocab(self) -> dict[str, int]:
        return {**self._wobert.token_dict, **self.added_tokens_encoder}

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return self._wobert.tokenize(text)[1:-1]

    def _convert_token_to_id(self, token: str) -> int:
        return self._wobert.token_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self._wobert.id_to_token(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return join_tokens(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        path = Path(save_directory) / ((f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILE)
        write_vocab(self._wobert.token_dict, path)
        return (str(path),)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any,
                        **kwargs: Any) -> tuple[str, ...] | None:
        """transformers' files, plus the shim named in ``auto_map``, the tokenizer.json guard and
        special_tokens_map.json; None, as transformers answers, where the path is a file."""
        files = super().save_pretrained(save_directory, *args, **kwargs)
        if files is None:  # transformers logged that the path is not a directory
            return None
        directory = Path(save_directory)
        (directory / SHIM_FILE).write_text(SHIM_SOURCE, encoding="utf-8")
        write_guard(directory)
        write_json(directory / SPECIAL_TOKENS_MAP_FILE, SPECIAL_TOKENS_MAP)
        return tuple(files) + tuple(str(directory / n) for n in (SHIM_FILE, TOKENIZER_JSON, SPECIAL_TOKENS_MAP_FILE))

    # -----------------------------------------------------------------------------------
    # Encoding: wobert.Tokenizer.encode_batch, one C call for a whole batch
    # -----------------------------------------------------------------------------------

    def _encode_plus(self, text: Any, text_pair: Any = None, **options: Any) -> BatchEncoding:
        """Texts (a str, a batch, or a batch of pairs) with [CLS]/[SEP] and longest-first
        truncation go to the C tokenizer; anything else (pre-tokenized input, ids, other
        truncation strategies, overflowing tokens) to transformers' own path."""
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        pairs = None if text_pair is None else list(text_pair) if batched else [text_pair]
        if batched and pairs is None and texts and all(isinstance(t, (list, tuple)) and len(t) == 2 for t in texts):
            texts, pairs = [t[0] for t in texts], [t[1] for t in texts]
        truncation = options.get("truncation_strategy", TruncationStrategy.DO_NOT_TRUNCATE)
        ours = (options.get("add_special_tokens", True) and not options.get("is_split_into_words")
                and not options.get("stride") and not options.get("return_overflowing_tokens")
                and truncation in (TruncationStrategy.DO_NOT_TRUNCATE, TruncationStrategy.LONGEST_FIRST)
                and all(isinstance(t, str) for t in texts + (pairs or []))
                and (pairs is None or len(pairs) == len(texts)))
        if not ours:
            if options.pop("return_offsets_mapping", False):
                raise NotImplementedError("return_offsets_mapping: only for texts (or pairs) with "
                                          "special tokens and longest_first truncation")
            return super()._encode_plus(text, text_pair, **options)
        maxlen = options.get("max_length") if truncation == TruncationStrategy.LONGEST_FIRST else None
        split = options.get("split_special_tokens", self.split_special_tokens)
        encoded = self._encode_texts(texts, pairs, maxlen, split)
        features = self._features(texts, pairs, encoded, split, options)
        if not batched:
            features = {k: v[0] for k, v in features.items()}
        padded = self.pad(features, padding=options.get("padding_strategy", PaddingStrategy.DO_NOT_PAD).value,
                          max_length=options.get("max_length"),
                          pad_to_multiple_of=options.get("pad_to_multiple_of"),
                          padding_side=options.get("padding_side"),
                          return_attention_mask=options.get("return_attention_mask"))
        if "offset_mapping" in features:
            padded["offset_mapping"] = self._padded_spans(padded, batched, options.get("padding_side"))
        return BatchEncoding(dict(padded), tensor_type=options.get("return_tensors"),
                             prepend_batch_axis=not batched)

    def _added_regex(self, split_special_tokens: bool) -> re.Pattern | None:
        """What cuts a text around special and added tokens (None: nothing does)."""
        tokens = tuple(self._added_tokens_encoder)
        return None if split_special_tokens or not tokens else _alternation(tokens)

    def _pieces(self, text: str, regex: re.Pattern | None) -> list[tuple[int, int, bool]]:
        """``(start, end, is_added_token)`` of the text's pieces."""
        pieces, pos = [], 0
        for match in regex.finditer(text) if regex is not None else ():
            if match.start() > pos:
                pieces.append((pos, match.start(), False))
            pieces.append((match.start(), match.end(), True))
            pos = match.end()
        return pieces + ([(pos, len(text), False)] if pos < len(text) or not pieces else [])

    def _encode_texts(self, texts: list[str], pairs: list[str] | None, maxlen: int | None,
                      split_special_tokens: bool) -> list[tuple[list[int], list[int]]]:
        """``wobert.Tokenizer.encode_batch``; texts holding an added token are encoded piece by piece."""
        regex = self._added_regex(split_special_tokens)
        marked = set() if regex is None else {
            i for i, text in enumerate(texts) if regex.search(text) or (pairs and regex.search(pairs[i]))}
        plain = [i for i in range(len(texts)) if i not in marked]
        out: list[Any] = [None] * len(texts)
        batch = self._wobert.encode_batch([texts[i] for i in plain],
                                          None if pairs is None else [pairs[i] for i in plain], maxlen)
        for i, pair in zip(plain, batch):
            out[i] = pair
        for i in marked:
            first = [self._wobert.cls_id] + self._piece_ids(texts[i], regex) + [self._wobert.sep_id]
            second = None if pairs is None else self._piece_ids(pairs[i], regex) + [self._wobert.sep_id]
            _truncate(first, second, maxlen)
            out[i] = (first + (second or []), [0] * len(first) + [1] * len(second or []))
        return out

    def _piece_ids(self, text: str, regex: re.Pattern) -> list[int]:
        ids: list[int] = []
        for start, end, added in self._pieces(text, regex):
            piece = text[start:end]
            ids += [self._added_tokens_encoder[piece]] if added else self._wobert.encode(piece)[0][1:-1]
        return ids

    def _text_spans(self, text: str, regex: re.Pattern | None) -> Spans:
        """Character spans of the tokens of ``text`` (without [CLS] and [SEP])."""
        spans: Spans = []
        for start, end, added in self._pieces(text, regex):
            if added:
                spans.append((start, end))
            else:
                tokens = self._wobert.tokenize(text[start:end])[1:-1]
                spans += [(start + a, start + b) for a, b in _spans(text[start:end], tokens, self.do_lower_case)]
        return spans

    def _features(self, texts: list[str], pairs: list[str] | None, encoded: list, split: bool,
                  options: dict[str, Any]) -> dict[str, list]:
        """The per-example lists ``__call__`` returns, before padding."""
        features: dict[str, list] = {"input_ids": [ids for ids, _ in encoded]}
        token_types = options.get("return_token_type_ids")
        if token_types or token_types is None and "token_type_ids" in self.model_input_names:
            features["token_type_ids"] = [segments for _, segments in encoded]
        firsts = [segments.count(0) for _, segments in encoded]  # [CLS] text [SEP]
        if options.get("return_special_tokens_mask"):
            features["special_tokens_mask"] = [
                ([1] + [0] * (n - 2) + [1] + ([0] * (len(ids) - n - 1) + [1] if len(ids) > n else []))[:len(ids)]
                for (ids, _), n in zip(encoded, firsts)]
        if options.get("return_offsets_mapping"):
            regex = self._added_regex(split)
            features["offset_mapping"] = [
                ([(0, 0)] + self._text_spans(texts[i], regex)[:n - 2] + [(0, 0)]
                 + (self._text_spans(pairs[i], regex)[:len(ids) - n - 1] + [(0, 0)] if pairs else []))[:len(ids)]
                for i, ((ids, _), n) in enumerate(zip(encoded, firsts))]
        if options.get("return_length"):
            features["length"] = [len(ids) for ids, _ in encoded]
        for ids in features["input_ids"]:
            self._eventual_warn_about_too_long_sequence(ids, options.get("max_length"), options.get("verbose", True))
        return features

    def _padded_spans(self, padded: Any, batched: bool, padding_side: str | None) -> list:
        """The offsets padded with (0, 0) as ``pad`` padded the ids."""
        ids = padded["input_ids"] if batched else [padded["input_ids"]]
        spans = padded["offset_mapping"] if batched else [padded["offset_mapping"]]
        left = (padding_side or self.padding_side) == "left"
        out = [[(0, 0)] * (len(i) - len(s)) + list(s) if left else list(s) + [(0, 0)] * (len(i) - len(s))
               for i, s in zip(ids, spans)]
        return out if batched else out[0]
