"""``wobert export``: a model directory as a Hugging Face model, or as ONNX for serving.

``--format hf`` writes ``config.json`` (model_type ``bert``: BertForMaskedLM for a pretrained
model, BertForSequenceClassification with ``id2label``/``label2id`` for a classifier from
``wobert finetune --save-model``), ``model.safetensors``, ``vocab.txt``,
``tokenizer_config.json``, ``special_tokens_map.json`` and ``tokenizer.json``; a word model's
tokenizer is ``wobert.hf.WoBertTokenizer`` (``AutoTokenizer.from_pretrained(dir,
trust_remote_code=True)``; its tokenizer.json is a guard against loading it otherwise), a char
model's is BERT's as a fast tokenizer (``AutoTokenizer.from_pretrained(dir)``: the
tokenizer.json of ``wobert.tokenizer_json``, exact to ``wobert.CharTokenizer``). The source is a directory in the Google
layout (a ``wobert pretrain`` export, a saved classifier, any Google BERT) or a Hugging Face one.

``--format onnx`` exports that Hugging Face model with ``torch.onnx.export``: ``model.onnx``
(inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, int64 ``[batch, sequence]``, both
axes dynamic; output ``logits``) beside config.json and the same tokenizer files.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wobert.backend import read_checkpoint
from wobert.classifier import ClassifierInfo, read_classifier_info
from wobert.errors import UserError
from wobert.files import replace_dir
from wobert.jsonfile import read_json, write_json
from wobert.layouts import (
    CLASSIFIER,
    HF,
    HF_CONFIG,
    MLM_HEAD,
    POOLER,
    SAFETENSORS,
    bert_config_to_hf,
    detect_layout,
    google_to_hf,
    read_hf_tensors,
    write_hf_tensors,
)
from wobert.model import find_bert_checkpoint
from wobert.tokenizer import CONFIG_FILE, SPECIAL_TOKENS_MAP, BaseTokenizer, load_tokenizer
from wobert.tokenizer_json import FAST_TOKENIZER_CLASS, write_char_tokenizer_json

ONNX_FILE = "model.onnx"
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
HF_INSTALL = "pip install 'wobert[hf]'"


@dataclass
class SourceModel:
    """A model directory read for export: BERT config, Google-named weights, tokenizer, and
    the classifier description of a finetuned classifier."""

    path: Path
    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    tokenizer: BaseTokenizer
    classifier: ClassifierInfo | None

    @property
    def architecture(self) -> str:
        """The transformers class of the export."""
        if self.classifier is not None:
            return "BertForSequenceClassification"
        return "BertForMaskedLM" if all(n in self.weights for n in MLM_HEAD) else "BertModel"


def read_source(model_dir: str | os.PathLike) -> SourceModel:
    """Read a model directory in either layout; ValueError for what transformers' BERT cannot hold."""
    path = Path(model_dir)
    config, checkpoint = find_bert_checkpoint(path)
    weights = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    tokenizer = load_tokenizer(path)
    if tokenizer.vocab_size != config["vocab_size"]:
        raise UserError(f"{path}: vocab.txt has {tokenizer.vocab_size} tokens but the model "
                         f"{config['vocab_size']}")
    classifier = read_classifier_info(path) or _hf_classifier(path, weights)
    if classifier is not None and classifier.pooling != "pool":
        raise UserError(f"{path}: the classifier was finetuned on the raw [CLS] vector (--pooling "
                         "cls); BertForSequenceClassification classifies the pooled output: "
                         "finetune with --pooling pool (the default) to export it")
    if classifier is not None and not all(n in weights for n in POOLER + CLASSIFIER):
        raise UserError(f"{path}: a classifier needs the pooler and output_weights/output_bias")
    return SourceModel(path, config, dict(weights), tokenizer, classifier)


def _hf_classifier(path: Path, weights: dict[str, np.ndarray]) -> ClassifierInfo | None:
    """The labels of a Hugging Face classifier directory (config.json's id2label)."""
    if detect_layout(path) != HF or CLASSIFIER[0] not in weights:
        return None
    id2label = read_json(path / HF_CONFIG, "model config").get("id2label") or {}
    count = len(weights[CLASSIFIER[0]])
    return ClassifierInfo(tuple(id2label.get(str(i), f"LABEL_{i}") for i in range(count)))


def export_hf(model_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the model of ``model_dir`` as a Hugging Face directory (replaced atomically)."""
    source = read_source(model_dir)
    tensors = google_to_hf(source.weights, str(source.path))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_hf_tensors(tmp / SAFETENSORS, tensors)
    labels = source.classifier.labels if source.classifier else None
    write_json(tmp / HF_CONFIG, bert_config_to_hf(source.config, source.architecture,
                                                  source.tokenizer.pad_id, labels))
    save_hf_tokenizer(source.tokenizer, tmp, source.config["max_position_embeddings"])
    replace_dir(tmp, out_dir)
    return out_dir


def save_hf_tokenizer(tokenizer: BaseTokenizer, directory: Path, model_max_length: int) -> None:
    """The tokenizer files of a Hugging Face directory, which ``wobert.Tokenizer.load`` reads too:
    WoBertTokenizer's for a word tokenizer, BERT's fast tokenizer for a char one."""
    tokenizer.save(directory)
    if tokenizer.level == "word":
        try:
            from wobert.hf import WoBertTokenizer
        except ImportError as err:
            raise ImportError(f"exporting a word model needs transformers ({err}): {HF_INSTALL}") from None
        WoBertTokenizer.from_pretrained(directory, model_max_length=model_max_length).save_pretrained(directory)
        return
    config = read_json(directory / CONFIG_FILE, "tokenizer config")
    write_json(directory / CONFIG_FILE, {**config, **SPECIAL_TOKENS_MAP, "tokenizer_class": FAST_TOKENIZER_CLASS,
                                        "model_max_length": model_max_length,
                                        "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
                                        "tokenize_chinese_chars": True, "strip_accents": None})
    write_json(directory / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
    write_char_tokenizer_json(tokenizer, directory)


def export_onnx(model_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the model of ``model_dir`` (either layout) as ``model.onnx`` with dynamic batch and
    sequence axes, beside its config.json and tokenizer files (replaced atomically)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise ImportError(f"ONNX export needs torch and transformers ({err}): {HF_INSTALL}") from None
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="wobert-export-") as scratch:
            hf_dir = Path(model_dir)
            if detect_layout(hf_dir) != HF:
                hf_dir = export_hf(hf_dir, Path(scratch) / "hf")
            else:
                read_hf_tensors(hf_dir)  # a damaged weights file: one line, before transformers reads it
            shutil.copytree(hf_dir, tmp, ignore=shutil.ignore_patterns("*.safetensors*", "*.bin"))
            write_onnx(hf_dir, tmp / ONNX_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out_dir)
    return out_dir


def write_onnx(hf_dir: Path, path: Path) -> None:
    """Trace the transformers model of ``hf_dir`` into ``path`` with dynamic batch and sequence axes."""
    import torch
    import transformers

    architecture = (read_json(hf_dir / HF_CONFIG, "model config").get("architectures") or ["BertModel"])[0]
    model = getattr(transformers, architecture).from_pretrained(hf_dir).eval()
    example = {name: torch.ones((2, 8), dtype=torch.int64) for name in ONNX_INPUTS}
    positions = model.config.max_position_embeddings
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=positions)}
    outputs = ["last_hidden_state", "pooler_output"] if architecture == "BertModel" else ["logits"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # from torch.export internals
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")  # one axis, 3 inputs
        torch.onnx.export(model, (), str(path), kwargs=example, input_names=list(ONNX_INPUTS),
                          output_names=outputs, dynamic_shapes={name: axes for name in ONNX_INPUTS},
                          dynamo=True, external_data=False, verbose=False)
