"""BERT weights in two directory layouts, Google's and Hugging Face's, mapped by name.

- Google (bert4keras, TensorFlow): ``bert_config.json``, ``vocab.txt``, ``bert_model.ckpt.*``;
  variables such as ``bert/encoder/layer_0/attention/self/query/kernel``, Dense kernels
  ``[in, out]``.
- Hugging Face (transformers): ``config.json`` (model_type ``bert``), ``vocab.txt`` and
  ``model.safetensors`` (or its sharded index, or ``pytorch_model.bin`` where torch is
  installed); tensors such as ``bert.encoder.layer.0.attention.self.query.weight``, Linear
  weights ``[out, in]``.

The mapping: Dense kernels are transposed; LayerNorm ``gamma``/``beta`` are ``weight``/``bias``;
the MLM output bias ``cls/predictions/output_bias`` is ``cls.predictions.bias`` (the decoder is
tied to the word embeddings); a finetuned classifier's ``output_weights``/``output_bias``
(Google's run_classifier names) are ``classifier.weight``/``classifier.bias``. Older
checkpoints (hfl's RoBERTa-wwm-ext, a RoBERTa trained and saved as BERT) name LayerNorm
``gamma``/``beta`` and may lack the ``bert.`` prefix; both read. Safetensors are read with numpy
alone (no torch, no TensorFlow).
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wobert.errors import UserError, damaged
from wobert.jsonfile import read_json

log = logging.getLogger(__name__)

GOOGLE, HF = "google", "hf"
GOOGLE_CONFIG, HF_CONFIG = "bert_config.json", "config.json"
SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: the keys of Google's bert_config.json; config.json holds them under the same names
GOOGLE_CONFIG_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
    "max_position_embeddings", "type_vocab_size", "initializer_range",
)
#: BertConfig's defaults for keys a config.json may leave out
HF_DEFAULTS = {"hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
               "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02}
LAYER_NORM_EPS = 1e-12

_EMBEDDINGS = ["bert/embeddings/" + n for n in (
    "word_embeddings", "position_embeddings", "token_type_embeddings",
    "LayerNorm/gamma", "LayerNorm/beta")]
_LAYER = [f"{block}/{leaf}" for block in (
    "attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense",
    "intermediate/dense", "output/dense") for leaf in ("kernel", "bias")] + [
    f"{block}/LayerNorm/{leaf}" for block in ("attention/output", "output") for leaf in ("gamma", "beta")]
POOLER = ["bert/pooler/dense/kernel", "bert/pooler/dense/bias"]
MLM_HEAD = ["cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
            "cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta",
            "cls/predictions/output_bias"]
NSP_HEAD = ["cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias"]
CLASSIFIER = ["output_weights", "output_bias"]
_SPECIAL_NAMES = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    "output_weights": "classifier.weight",
    "output_bias": "classifier.bias",
}
_LEAVES = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}
#: Google checkpoint variables that are training state, not weights
_TRAINING_STATE = re.compile(r"(^|/)(adam_[mv]|global_step|bad_steps|loss_scale)$")
#: Hugging Face tensors that are buffers or tied copies, not weights of their own
_HF_IGNORED = ("bert.embeddings.position_ids", "cls.predictions.decoder.weight",
               "cls.predictions.decoder.bias")


class Weights(dict):
    """Google BERT names -> arrays read from another layout; ``source`` names them in messages."""

    def __init__(self, values: Mapping[str, np.ndarray], source: str) -> None:
        super().__init__(values)
        self.source = source


def detect_layout(directory: str | os.PathLike) -> str:
    """``GOOGLE`` (bert_config.json) or ``HF`` (config.json) for a model directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"BERT model directory not found: {directory}")
    if (directory / GOOGLE_CONFIG).is_file():
        return GOOGLE
    if (directory / HF_CONFIG).is_file():
        return HF
    raise FileNotFoundError(
        f"{directory} is not a BERT model directory: it has neither {GOOGLE_CONFIG} (Google "
        f"layout, with bert_model.ckpt) nor {HF_CONFIG} (Hugging Face layout, with {SAFETENSORS})")


def config_file(directory: str | os.PathLike) -> Path:
    """The model config of a directory in either layout."""
    return Path(directory) / (GOOGLE_CONFIG if detect_layout(directory) == GOOGLE else HF_CONFIG)


# ---------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------


def encoder_names(num_layers: int) -> list[str]:
    """The embedding and encoder weights of a BERT of ``num_layers`` (Google layout)."""
    return _EMBEDDINGS + [f"bert/encoder/layer_{i}/{name}" for i in range(num_layers) for name in _LAYER]


def google_names(num_layers: int) -> list[str]:
    """Every weight name a BERT of ``num_layers`` may have in the Google layout."""
    return encoder_names(num_layers) + POOLER + MLM_HEAD + NSP_HEAD + CLASSIFIER


def hf_name(google: str) -> str:
    """The Hugging Face name of a Google BERT variable."""
    if google in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[google]
    *body, last = google.split("/")
    leaf = _LEAVES.get(last)
    parts = body if leaf else body + [last]
    return ".".join([re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in parts] + [leaf or "weight"])


def _transposed(google: str) -> bool:
    return google.endswith("/kernel")


def _hf_alias(name: str) -> str:
    """Today's name of a tensor in an older checkpoint (no ``bert.`` prefix, gamma/beta)."""
    if name.split(".")[0] in ("embeddings", "encoder", "pooler"):
        name = "bert." + name
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))


def _listed(names: Sequence[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def google_to_hf(values: Mapping[str, np.ndarray], source: str = "checkpoint") -> dict[str, np.ndarray]:
    """Google BERT variables as Hugging Face tensors; training state (Adam slots) is dropped.

    ValueError naming any variable that is not a BERT weight.
    """
    weights = {k: v for k, v in values.items() if not _TRAINING_STATE.search(k)}
    layers = 1 + max((int(m.group(1)) for k in weights
                      if (m := re.match(r"bert/encoder/layer_(\d+)/", k))), default=-1)
    unknown = sorted(set(weights) - set(google_names(layers)))
    if unknown:
        raise UserError(f"{source}: not BERT weights: {_listed(unknown)}")
    return {hf_name(k): np.ascontiguousarray(v.T if _transposed(k) else v) for k, v in weights.items()}


def hf_to_google(tensors: Mapping[str, np.ndarray], num_layers: int, source: str) -> Weights:
    """Hugging Face BERT tensors as Google BERT variables (``num_layers`` from config.json).

    ValueError naming unknown tensors, missing embedding or encoder weights, or an MLM decoder
    that is not tied to the word embeddings.
    """
    names = {hf_name(g): g for g in google_names(num_layers)}
    tensors = {_hf_alias(k): v for k, v in tensors.items()}
    unknown = sorted(k for k in tensors if k not in names and k not in _HF_IGNORED)
    if unknown:
        raise UserError(f"{source}: unknown weights, not those of a BERT with {num_layers} "
                         f"layers (BertForPreTraining, BertForMaskedLM, BertModel or "
                         f"BertForSequenceClassification): {_listed(unknown)}")
    decoder = tensors.get("cls.predictions.decoder.weight")
    embeddings = tensors.get("bert.embeddings.word_embeddings.weight")
    if decoder is not None and embeddings is not None and not np.array_equal(decoder, embeddings):
        raise UserError(f"{source}: the MLM decoder is not tied to the word embeddings; "
                         "wobert's BERT ties them")
    if "cls.predictions.bias" not in tensors and "cls.predictions.decoder.bias" in tensors:
        tensors["cls.predictions.bias"] = tensors["cls.predictions.decoder.bias"]
    missing = [hf_name(g) for g in encoder_names(num_layers) if hf_name(g) not in tensors]
    if missing:
        raise UserError(f"{source}: missing weights of a BERT with {num_layers} layers: {_listed(missing)}")
    values = {names[k]: _float32(v.T if _transposed(names[k]) else v)
              for k, v in tensors.items() if k in names}
    return Weights(values, source)


def _float32(value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    return np.ascontiguousarray(value.astype(np.float32) if value.dtype.kind == "f" else value)


# ---------------------------------------------------------------------------------------
# Hugging Face files
# ---------------------------------------------------------------------------------------


def read_hf_tensors(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], Path]:
    """The tensors of a Hugging Face directory and the file they came from: model.safetensors,
    its sharded index, or pytorch_model.bin (needs torch)."""
    directory = Path(directory)
    if (directory / SAFETENSORS).is_file():
        return _read_safetensors(directory / SAFETENSORS), directory / SAFETENSORS
    if (directory / SAFETENSORS_INDEX).is_file():
        index = read_json(directory / SAFETENSORS_INDEX, "safetensors index")
        tensors: dict[str, np.ndarray] = {}
        for shard in sorted(set(index.get("weight_map", {}).values())):
            tensors.update(_read_safetensors(directory / shard))
        return tensors, directory / SAFETENSORS_INDEX
    if (directory / TORCH_BIN).is_file():
        return _read_torch_bin(directory / TORCH_BIN), directory / TORCH_BIN
    raise FileNotFoundError(f"no {SAFETENSORS} (or {TORCH_BIN}) in {directory}")


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise UserError(f"{path}: reading pytorch_model.bin needs PyTorch (pip install "
                         "'wobert[hf]'); or save the model as model.safetensors") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise _damaged(path, err) from None
    return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in state.items()}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        raise UserError(f"{path} is missing (the safetensors index lists it)")
    try:
        return load_file(path)
    except SafetensorError as err:
        raise _damaged(path, err) from None


def _damaged(path: Path, err: BaseException) -> UserError:
    """The error for a weights file that cannot be read, with the reader's first sentence."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0]
    return UserError(damaged(str(path), reason))


def write_hf_tensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray]) -> Path:
    """Write ``model.safetensors`` (tagged as PyTorch tensors, as transformers expects)."""
    from safetensors.numpy import save_file

    save_file(dict(tensors), str(path), metadata={"format": "pt"})
    return Path(path)


def hf_config_to_bert(hf: Mapping[str, Any], where: str | os.PathLike) -> dict[str, Any]:
    """A config.json as bert_config.json keys; ValueError for what wobert's BERT cannot be."""
    model_type = hf.get("model_type", "bert")
    if model_type != "bert":
        raise UserError(f"{where}: model_type {model_type!r} is not BERT: wobert reads BERT "
                         "checkpoints (a RoBERTa saved as BERT, such as hfl's RoBERTa-wwm-ext, works)")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{where}: position_embedding_type {hf['position_embedding_type']!r}: "
                         "wobert's BERT has absolute position embeddings only")
    missing = [k for k in GOOGLE_CONFIG_KEYS if k not in hf and k not in HF_DEFAULTS]
    if missing:
        raise UserError(f"{where}: BERT config lacks {', '.join(missing)}")
    return {k: hf.get(k, HF_DEFAULTS.get(k)) for k in GOOGLE_CONFIG_KEYS}


def bert_config_to_hf(config: Mapping[str, Any], architecture: str, pad_token_id: int = 0,
                      labels: Sequence[str] | None = None) -> dict[str, Any]:
    """config.json for ``architecture`` (BertForMaskedLM, BertForSequenceClassification with
    ``labels``, or BertModel) from bert_config.json keys."""
    hf: dict[str, Any] = {"architectures": [architecture], "model_type": "bert"}
    hf.update({k: config[k] for k in GOOGLE_CONFIG_KEYS if k in config})
    hf.update(layer_norm_eps=LAYER_NORM_EPS, pad_token_id=pad_token_id,
              position_embedding_type="absolute", tie_word_embeddings=True)
    if labels is not None:
        hf["id2label"] = {str(i): label for i, label in enumerate(labels)}
        hf["label2id"] = {label: i for i, label in enumerate(labels)}
        hf["problem_type"] = "single_label_classification"
    return hf


def read_hf_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, Any], Weights]:
    """bert_config.json keys and Google-named weights of a Hugging Face BERT directory.

    A checkpoint without a pooler (saved from BertForMaskedLM) gets a freshly initialised one,
    with a warning, as transformers does for BertModel.
    """
    directory = Path(directory)
    where = directory / HF_CONFIG
    config = hf_config_to_bert(read_json(where, "model config"), where)
    tensors, source = read_hf_tensors(directory)
    weights = hf_to_google(tensors, config["num_hidden_layers"], str(source))
    if not all(name in weights for name in POOLER):
        log.warning("%s has no pooler (%s): it starts from random weights", source,
                    ", ".join(map(hf_name, POOLER)))
        hidden, rng = config["hidden_size"], np.random.default_rng(0)
        weights[POOLER[0]] = (rng.standard_normal((hidden, hidden)) * config["initializer_range"]).astype(np.float32)
        weights[POOLER[1]] = np.zeros(hidden, np.float32)
    return config, weights


__all__ = [
    "GOOGLE", "HF", "Weights", "detect_layout", "config_file", "encoder_names", "google_names",
    "hf_name", "google_to_hf", "hf_to_google", "read_hf_tensors", "write_hf_tensors",
    "hf_config_to_bert", "bert_config_to_hf", "read_hf_checkpoint",
    "POOLER", "MLM_HEAD", "NSP_HEAD", "CLASSIFIER",
]
