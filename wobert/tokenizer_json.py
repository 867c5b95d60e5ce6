"""The ``tokenizer.json`` of Hugging Face exports, built and checked with the ``tokenizers`` library.

- A char tokenizer's: BERT's pipeline (BertNormalizer, WordPiece, ``[CLS] $A [SEP] $B [SEP]``)
  exact to ``wobert.CharTokenizer`` (bert4keras). The library's own Unicode tables are older
  than Python's and its ``clean_text`` also drops private-use and unassigned characters (which
  bert4keras keeps, as ``[UNK]``), so three steps follow Python's tables instead: the characters
  bert4keras drops are removed first, accents (category Mn) are stripped after lower-casing
  (NFD), and text splits on whitespace and around every character the char level keeps alone
  (punctuation, CJK). One difference is left: the library lower-cases character by character,
  so a word-final capital sigma becomes σ where Python makes it ς. ``tokenizer_config.json``
  names ``PreTrainedTokenizerFast``, which loads the file as it is:
  ``AutoTokenizer.from_pretrained(dir)`` gives these ids.
- A word tokenizer's: a guard the library refuses with GUARD_MESSAGE, so that transformers'
  own tokenizers (``AutoTokenizer`` without remote code, ``BertTokenizer``) never tokenize a
  word model's text by characters.

Each file is read back after writing: the char one must give the tokenizer's ids on
CHECK_TEXTS, the guard must be refused with its message.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as JsonTokenizer

from wobert.jsonfile import write_json
from wobert.tokenizer import (
    CLS,
    MAX_WORD_CHARS,
    SEP,
    SPECIAL_TOKENS,
    UNK,
    BaseTokenizer,
    char_classes,
    combining_marks,
)

TOKENIZER_JSON = "tokenizer.json"
#: the transformers class that loads a char export's tokenizer.json as it is
FAST_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
GUARD_MESSAGE = ("WoBERT word tokenizer: load it with AutoTokenizer.from_pretrained(path, "
                 "trust_remote_code=True), with wobert installed")
#: texts a char tokenizer.json must encode as the tokenizer does, checked after writing
CHECK_TEXTS = ("今天天气不错，我们去公园散步吧！", "Hello World! Café naïve ÅNGSTRÖM, 3.14%",
               "iPhone12和C++的\ue000私用区\x00\u200b控制符𠀀\U0002B820", "\t第一行\u2028第二行 ", "")


def _char_class(codes: Iterable[int]) -> Regex:
    """A regex matching one of the code points (as ranges)."""
    ranges = [(group[0][1], group[-1][1]) for _, group in
              itertools.groupby(enumerate(sorted(codes)), key=lambda p: p[1] - p[0])
              for group in [list(group)]]
    return Regex("[" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]")


def char_tokenizer_json(tokenizer: BaseTokenizer) -> JsonTokenizer:
    """The ``tokenizers`` tokenizer of a char tokenizer (see the module docstring)."""
    classes = char_classes()
    dropped = _char_class(c for c in range(len(classes)) if classes[c] == 3)
    alone = _char_class(c for c in range(len(classes)) if classes[c] == 1)
    lower = tokenizer.do_lower_case
    built = JsonTokenizer(models.WordPiece(vocab=tokenizer.token_dict, unk_token=UNK,
                                           max_input_chars_per_word=MAX_WORD_CHARS))
    built.normalizer = normalizers.Sequence(
        [normalizers.Replace(dropped, ""),
         normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                                    lowercase=lower)]
        + ([normalizers.NFD(), normalizers.Replace(_char_class(combining_marks()[1]), "")] if lower else []))
    built.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                   pre_tokenizers.Split(alone, "isolated")])
    built.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0", pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, tokenizer.cls_id), (SEP, tokenizer.sep_id)])
    built.decoder = decoders.WordPiece()
    built.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return built


def write_char_tokenizer_json(tokenizer: BaseTokenizer, directory: Path) -> Path:
    """Write the char tokenizer's tokenizer.json and check it gives the tokenizer's ids."""
    path = directory / TOKENIZER_JSON
    char_tokenizer_json(tokenizer).save(str(path))
    written = JsonTokenizer.from_file(str(path))
    for text in CHECK_TEXTS:
        encoded = written.encode(text, text[::-1])
        if (encoded.ids, encoded.type_ids) != tokenizer.encode(text, text[::-1]):
            raise RuntimeError(f"{path} gives other ids than the char tokenizer for {text!r}")
    return path


def guard_tokenizer_json() -> dict[str, Any]:
    """A tokenizer.json the tokenizers library refuses with an error showing GUARD_MESSAGE
    (an unknown truncation direction is the one error that quotes the file's text), in the
    library's own format otherwise."""
    guard = json.loads(JsonTokenizer(models.WordPiece(vocab={UNK: 0}, unk_token=UNK)).to_str())
    guard["truncation"] = {"direction": GUARD_MESSAGE, "max_length": 1, "strategy": "LongestFirst", "stride": 0}
    return guard


def write_guard(directory: Path) -> Path:
    """Write the guard tokenizer.json and check that the tokenizers library refuses it."""
    path = directory / TOKENIZER_JSON
    write_json(path, guard_tokenizer_json())
    try:
        JsonTokenizer.from_file(str(path))
    except Exception as err:  # the library raises a bare Exception
        if GUARD_MESSAGE in str(err):
            return path
        raise RuntimeError(f"{path}: the tokenizers library refuses the guard, but not with its "
                           f"message: {err}") from None
    raise RuntimeError(f"{path}: the tokenizers library reads the guard")
