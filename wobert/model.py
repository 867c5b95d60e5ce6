"""The MLM pretraining model: bert4keras BERT whose MLM head runs only at the masked positions.

``build_transformer_model(with_mlm=True, with_pool=True)`` builds the whole network and names
the head's layers ``MLM-Dense``, ``MLM-Norm``, ``Embedding-Token`` (the tied output matrix) and
``MLM-Bias``. :func:`gathered_mlm_model` reuses those layers, and the last encoder layer's,
on the last layer's input *gathered* at ``masked_positions``: it returns ``[B, P, V]`` logits
instead of ``[B, L, V]`` probabilities, so the vocabulary-sized matmul and most of the last
layer cost ``P / L`` of WoBERT's full-position head.
The Transformer keeps the complete network (pooler included) for the BERT-format export.

Initialisation: from scratch, from any BERT directory in the Google or the Hugging Face layout
(``wobert.layouts``; same vocabulary, or a
word vocabulary built on its characters: ``keep_tokens`` + ``compound_tokens`` make each new
word's embedding and MLM output bias the mean over its characters), or from our own
training checkpoint (see ``wobert.pretrain``).
"""
from __future__ import annotations

import functools
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wobert.backend import (
    BERT,
    Checkpoint,
    Dropout,
    MultiHeadAttention,
    build_bert,
    keras,
    read_bert_config,
    save_bert_checkpoint,
    tf,
)
from wobert.errors import UserError
from wobert.files import replace_dir
from wobert.jsonfile import write_json
from wobert.layouts import HF, config_file, detect_layout, read_hf_checkpoint
from wobert.vocabdir import CONFIG_FILE, VOCAB_FILE, Vocabulary, read_vocabulary

ARCHITECTURE = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size",
)
DROPOUT = ("hidden_dropout_prob", "attention_probs_dropout_prob")
BERT_KEYS = frozenset(ARCHITECTURE + DROPOUT + ("vocab_size", "hidden_act", "initializer_range"))


def check_bert_config(
    config: Mapping[str, Any],
    *,
    maxlen: int | None = None,
    where: str = "model config",
) -> dict[str, Any]:
    """Return ``config`` as a dict, or raise ``UserError`` naming the first impossible size.

    ``maxlen`` (the training sequences' length) must fit ``max_position_embeddings``.
    """
    config = dict(config)
    missing = [k for k in ARCHITECTURE + ("hidden_act",) if k not in config]
    if missing:
        raise UserError(f"{where}: missing {', '.join(missing)}")
    for key in ARCHITECTURE + (("vocab_size",) if "vocab_size" in config else ()):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{where}: {key} must be a positive integer, not {value!r}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise UserError(
            f"{where}: hidden_size {config['hidden_size']} is not divisible by "
            f"num_attention_heads {config['num_attention_heads']}"
        )
    for key in DROPOUT:
        value = config.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise UserError(f"{where}: {key} must be in [0, 1), not {value!r}")
    try:
        keras.activations.get(config["hidden_act"])
    except (ValueError, TypeError):
        raise UserError(f"{where}: unknown hidden_act {config['hidden_act']!r}") from None
    if maxlen is not None and maxlen > config["max_position_embeddings"]:
        raise UserError(
            f"{where}: the data's maxlen {maxlen} exceeds max_position_embeddings "
            f"{config['max_position_embeddings']}"
        )
    return config


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


@dataclass
class MLMModel:
    """The bert4keras Transformer (full network) and the gathered-head training model."""

    transformer: Any
    model: keras.Model
    config: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return int(self.transformer.vocab_size)


class PretrainingBERT(BERT):
    """bert4keras BERT for pretraining: its attention is :class:`XLAAttention`, and its pooler
    and MLM layers are float32 under a mixed precision policy.

    bert4keras's tied output (``Embedding(mode="dense")``) multiplies by the float32
    embedding (Keras does not autocast embeddings), which fails on float16 inputs.
    """

    def apply(self, inputs: Any = None, layer: Any = None, arguments: Any = None, **kwargs: Any) -> Any:
        if layer is MultiHeadAttention and not self.residual_attention_scores:
            layer = XLAAttention
        return super().apply(inputs, layer, arguments, **kwargs)

    def apply_final_layers(self, inputs: Any) -> Any:
        policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")
        try:
            return super().apply_final_layers(inputs)
        finally:
            keras.mixed_precision.set_global_policy(policy)


class XLAAttention(MultiHeadAttention):
    """bert4keras's multi-head attention whose scaled, masked softmax of ``q k^T`` and whose
    weighted sum of the values are one XLA kernel each, forward and gradient (TF's einsums and
    element-wise ops there run at about half the speed on CPU); the dropout between them is
    bert4keras's. Other kinds of attention (biases, relative positions) are bert4keras's own."""

    def pay_attention_to(self, inputs: Any, mask: Any = None, **kwargs: Any) -> Any:
        plain = self.normalization == "softmax" and self.attention_scale
        if len(inputs) > 3 or kwargs.get("a_bias") or kwargs.get("p_bias") or not plain:
            return super().pay_attention_to(inputs, mask, **kwargs)
        qw, kw, vw = inputs
        keys = mask[1] if mask else None
        if keys is None:
            keys = tf.ones(tf.shape(kw)[:2], tf.bool)
        probs = attention_probs(qw, kw, tf.cast(keys, tf.bool))
        if self.attention_dropout:
            probs = Dropout(self.attention_dropout)(probs)
        return attend(probs, vw), None


@tf.function(jit_compile=True)
def _attention_probs(q: tf.Tensor, k: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    scores = tf.einsum("bjhd,bkhd->bhjk", q, k) / q.shape[-1] ** 0.5
    return tf.nn.softmax(tf.where(keys[:, None, None, :], scores, tf.cast(-math.inf, scores.dtype)))


@tf.function(jit_compile=True)
def _attention_probs_grad(q: tf.Tensor, k: tf.Tensor, probs: tf.Tensor,
                          dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    d_scores = probs * (dy - tf.reduce_sum(dy * probs, -1, keepdims=True)) / q.shape[-1] ** 0.5
    return tf.einsum("bhjk,bkhd->bjhd", d_scores, k), tf.einsum("bhjk,bjhd->bkhd", d_scores, q)


@tf.custom_gradient
def attention_probs(q: tf.Tensor, k: tf.Tensor, keys: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """``softmax(q k^T / sqrt(d))`` over the keys where ``keys`` (``[B, K]`` bool) is true:
    ``[B, Q, H, D]`` queries, ``[B, K, H, D]`` keys -> ``[B, H, Q, K]``."""
    probs = _attention_probs(q, k, keys)
    return probs, lambda dy: (*_attention_probs_grad(q, k, probs, dy), None)


@tf.function(jit_compile=True)
def _attend(probs: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    return tf.einsum("bhjk,bkhd->bjhd", probs, v)


@tf.function(jit_compile=True)
def _attend_grad(probs: tf.Tensor, v: tf.Tensor, dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.einsum("bjhd,bkhd->bhjk", dy, v), tf.einsum("bhjk,bjhd->bkhd", probs, dy)


@tf.custom_gradient
def attend(probs: tf.Tensor, v: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """The values weighted by the attention: ``[B, H, Q, K]``, ``[B, K, H, D]`` -> ``[B, Q, H, D]``."""
    return _attend(probs, v), lambda dy: _attend_grad(probs, v, dy)


class TiedOutput(keras.layers.Layer):
    """``x @ E^T`` for the token embedding ``E`` of ``embedding`` (the tied MLM output) in the
    layer's compute dtype: ``Embedding(mode="dense")`` without its float32-only kernel, so
    the head's biggest matmul runs in float16 under mixed precision."""

    def __init__(self, embedding: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embedding = embedding

    def call(self, x: tf.Tensor) -> tf.Tensor:
        kernel = tf.cast(tf.convert_to_tensor(self.embedding.embeddings), x.dtype)
        flat = tied_logits(tf.reshape(x, [-1, kernel.shape[1]]), kernel)
        out = tf.reshape(flat, tf.concat([tf.shape(x)[:-1], [kernel.shape[0]]], 0))
        out.set_shape(x.shape[:-1].concatenate(kernel.shape[:1]))
        return out  # (tf.einsum here has a gradient ~15x slower on CPU)


@tf.function(jit_compile=True)
def _xla_matmul_transposed(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    return tf.matmul(x, kernel, transpose_b=True)


@tf.custom_gradient
def tied_logits(x: tf.Tensor, kernel: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """``x @ kernel^T``: forward by XLA (TF's CPU kernel for a transposed right-hand side
    runs at ~60% of XLA's speed there), the two gradient matmuls by TF (as fast as XLA's)."""

    def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.matmul(dy, kernel), tf.matmul(dy, x, transpose_a=True)

    return _xla_matmul_transposed(x, kernel), grad


SQRT_HALF, INV_SQRT_2PI = 0.5**0.5, (2 * math.pi) ** -0.5


@tf.function(jit_compile=True)
def _gelu_forward(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.math.erf(x * SQRT_HALF))


@tf.function(jit_compile=True)
def _gelu_backward(x: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    cdf = 0.5 * (1.0 + tf.math.erf(x * SQRT_HALF))
    return dy * (cdf + x * tf.exp(-0.5 * tf.square(x)) * INV_SQRT_2PI)


@tf.custom_gradient
def xla_gelu(x: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """bert4keras's GELU (erf form), forward and gradient one XLA kernel each, where TF runs
    about ten element-wise ops over the feed-forward activations. XLA compiles once per input
    shape, so it serves pretraining (a few bucket shapes), not finetuning (a shape per length)."""
    return _gelu_forward(x), lambda dy: _gelu_backward(x, dy)


def gathered_mlm_model(transformer: Any) -> keras.Model:
    """Keras model ``[token_ids, segment_ids, masked_positions] -> [B, P, V]`` MLM logits.

    Shares every layer with ``transformer.model``. The last encoder layer computes its queries,
    feed-forward network and residuals at the gathered positions only (its keys and values see
    the whole sequence), and so does the head: the MLM loss reads nothing else.
    """
    layer = functools.partial(_last_layer, transformer)
    sequence = layer("MultiHeadSelfAttention").get_input_at(0)[0]  # the last layer's input
    positions = keras.Input(shape=(None,), dtype="int32", name="Input-Masked-Positions")
    queries = keras.layers.Lambda(
        lambda args: tf.gather(args[0], args[1], batch_dims=1), name="MLM-Gather"
    )([sequence, positions])

    def residual(block: str, inputs: Any, outputs: Any) -> Any:
        outputs = layer(f"{block}-Dropout")(outputs)
        return layer(f"{block}-Norm")(layer(f"{block}-Add")([inputs, outputs]))

    x = residual("MultiHeadSelfAttention", queries,
                 layer("MultiHeadSelfAttention")([queries, sequence, sequence]))
    x = residual("FeedForward", x, layer("FeedForward")(x))
    for name in ("MLM-Dense", "MLM-Norm"):
        x = transformer.layers[transformer.prefixed(name)](x)
    x = TiedOutput(transformer.layers[transformer.prefixed("Embedding-Token")],
                   name="MLM-Tied-Output")(x)
    x = transformer.layers[transformer.prefixed("MLM-Bias")](x)
    return keras.Model(transformer.model.inputs + [positions], x, name="MLM-Gathered")


def _last_layer(transformer: Any, name: str) -> Any:
    """Layer ``Transformer-<last>-<name>`` of a bert4keras BERT; the identity for a dropout
    layer that a zero rate left out."""
    full = transformer.prefixed(f"Transformer-{transformer.num_hidden_layers - 1}-{name}")
    if full not in transformer.layers and name.endswith("-Dropout"):
        return lambda x: x
    return transformer.layers[full]


def build_mlm_model(
    config: Mapping[str, Any],
    checkpoint: Checkpoint | None = None,
    *,
    keep_tokens: Sequence[int] | None = None,
    compound_tokens: Sequence[Sequence[int]] | None = None,
) -> MLMModel:
    """Build BERT with MLM head and pooler, optionally loading a checkpoint (a Google BERT
    prefix, or Google-named weights).

    With ``keep_tokens``/``compound_tokens`` the vocabulary is re-shaped while loading, and
    ``config["vocab_size"]`` becomes the new size.
    """
    config = check_bert_config(config)
    fused = {"hidden_act": xla_gelu} if config["hidden_act"] == "gelu" else {}
    transformer = build_bert(
        {**config, **fused}, checkpoint, with_mlm=True, with_pool=True, model=PretrainingBERT,
        keep_tokens=keep_tokens, compound_tokens=compound_tokens,
    )
    config["vocab_size"] = int(transformer.vocab_size)
    return MLMModel(transformer, gathered_mlm_model(transformer), config)


def mlm_sums(
    logits: tf.Tensor, masked_ids: tf.Tensor, masked_weights: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Weighted sums over masked positions: (cross-entropy, correct predictions, weight); a
    prediction is correct where the target's logit is the largest."""
    logits = tf.cast(logits, tf.float32)
    weights = tf.cast(masked_weights, tf.float32)
    masked_ids = tf.cast(masked_ids, tf.int32)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=masked_ids, logits=logits)
    target = tf.gather(logits, masked_ids, batch_dims=masked_ids.shape.rank)
    hits = tf.cast(target >= tf.reduce_max(logits, -1), tf.float32)
    return tf.reduce_sum(xent * weights), tf.reduce_sum(hits * weights), tf.reduce_sum(weights)


# ``mlm_sums`` compiled by XLA: the softmax over the vocabulary and its gradient in one pass
# each (TF's own kernel is several times slower on CPU). A step that XLA compiles whole calls
# ``mlm_sums`` itself: through this function its gradient would need shapes at run time (under
# op determinism, or from a trace made for batches of unknown size), and XLA would compile the
# step anew for every batch.
mlm_loss = tf.function(mlm_sums, jit_compile=True)


# ---------------------------------------------------------------------------------------
# Google BERT directories: initialisation and export
# ---------------------------------------------------------------------------------------


def find_bert_checkpoint(model_dir: str | os.PathLike) -> tuple[dict[str, Any], Checkpoint]:
    """The BERT config and checkpoint of a model directory: the ``bert_config.json`` and
    checkpoint prefix of the Google layout, or the config and Google-named weights read from a
    Hugging Face directory (``config.json`` + ``model.safetensors``)."""
    model_dir = Path(model_dir)
    if detect_layout(model_dir) == HF:
        return read_hf_checkpoint(model_dir)
    config = read_bert_config(model_dir / "bert_config.json")
    checkpoint = tf.train.latest_checkpoint(str(model_dir))
    if checkpoint is None and (model_dir / "bert_model.ckpt.index").is_file():
        checkpoint = str(model_dir / "bert_model.ckpt")
    if checkpoint is None:
        raise FileNotFoundError(f"no TF checkpoint (bert_model.ckpt.index) in {model_dir}")
    return config, checkpoint


def init_config(
    model_dir: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], Checkpoint]:
    """The config and checkpoint of a BERT directory to start from, with the dropout rates of
    ``overrides``; architecture keys in ``overrides`` must agree with the model's."""
    config, checkpoint = find_bert_checkpoint(model_dir)
    where = config_file(model_dir)
    for key, value in (overrides or {}).items():
        if key in ARCHITECTURE and config.get(key) != value:
            raise UserError(
                f"model.{key}={value!r} differs from {where} ({config.get(key)!r}): "
                "the architecture of an initialising model cannot change"
            )
        if key in DROPOUT:
            config[key] = value
    return config, checkpoint


def init_from_bert(
    model_dir: str | os.PathLike,
    vocab: Vocabulary,
    overrides: Mapping[str, Any] | None = None,
) -> MLMModel:
    """Start from a pretrained BERT directory, for the same vocabulary or a word vocabulary
    built on its characters (new words start as the mean of their characters).

    ``overrides``: see :func:`init_config`.
    """
    config, checkpoint = init_config(model_dir, overrides)
    where = config_file(model_dir)
    base = read_vocabulary(model_dir)
    if config["vocab_size"] != base.size:
        raise UserError(f"{where}: vocab_size {config['vocab_size']} but vocab.txt has {base.size} tokens")
    if vocab.sha256 == base.sha256:
        return build_mlm_model(config, checkpoint)
    keep = vocab.keep_tokens
    if base.tokens == vocab.tokens[:base.size]:
        keep = list(range(base.size))  # the model was trained on the kept base tokens already
    if keep is None or vocab.compound_tokens is None:
        raise UserError(
            f"vocabulary {vocab.directory} differs from {model_dir}'s and has no "
            "keep_tokens.json/compound_tokens.json to map it onto that model"
        )
    _check_word_vocab(vocab, base, keep)
    return build_mlm_model(config, checkpoint, keep_tokens=keep, compound_tokens=vocab.compound_tokens)


def _check_word_vocab(vocab: Vocabulary, base: Vocabulary, keep: list[int]) -> None:
    """Raise unless ``vocab`` = the kept base tokens followed by one token per compound."""
    compound = vocab.compound_tokens
    problem = None
    if len(keep) + len(compound) != vocab.size:
        problem = (f"keep_tokens ({len(keep)}) + compound_tokens ({len(compound)}) "
                   f"!= {vocab.size} tokens in vocab.txt")
    elif keep and not 0 <= min(keep) <= max(keep) < base.size:
        problem = f"keep_tokens point outside the base vocab of {base.size} tokens"
    elif any(base.tokens[i] != token for i, token in zip(keep, vocab.tokens)):
        first = next(n for n, (i, t) in enumerate(zip(keep, vocab.tokens)) if base.tokens[i] != t)
        problem = (f"vocab.txt line {first + 1} is {vocab.tokens[first]!r} but keep_tokens "
                   f"points at {base.tokens[keep[first]]!r} in the base vocab")
    elif any(not ids or min(ids) < 0 or max(ids) >= len(keep) for ids in compound):
        problem = "compound_tokens hold ids outside the kept base tokens"
    if problem:
        raise UserError(
            f"vocabulary {vocab.directory} was not built on {base.directory}'s vocab: {problem}"
        )


def export_bert(mlm: MLMModel, out_dir: str | os.PathLike, vocab: Vocabulary) -> Path:
    """Write ``out_dir`` in the Google BERT layout, replacing it atomically.

    bert_config.json, vocab.txt, bert_model.ckpt.{index,data-*}, checkpoint, and the word
    tokenizer's tokenizer_config.json when the vocabulary has one.
    """
    if vocab.size != mlm.vocab_size:
        raise UserError(f"vocabulary {vocab.directory} has {vocab.size} tokens, the model {mlm.vocab_size}")
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = {k: v for k, v in mlm.config.items() if k in BERT_KEYS}
    write_json(tmp / "bert_config.json", config)
    shutil.copyfile(vocab.vocab_file, tmp / VOCAB_FILE)
    if vocab.tokenizer_config is not None:
        shutil.copyfile(vocab.tokenizer_config, tmp / CONFIG_FILE)
    save_bert_checkpoint(mlm.transformer, tmp / "bert_model.ckpt")
    replace_dir(tmp, out_dir)
    return out_dir
