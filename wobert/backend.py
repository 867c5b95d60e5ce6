"""The one place where bert4keras 0.11.5 is made to run on TensorFlow 2.21 + tf_keras.

Every other module imports ``tf``, ``keras``, ``K`` and bert4keras through here:

- ``TF_KERAS=1`` and ``TF_USE_LEGACY_KERAS=1`` are set before anything imports keras,
  so ``tf.keras`` is tf_keras (Keras 2) and bert4keras uses it.
- bert4keras's optimizers subclass ``keras.optimizers.Optimizer``; on tf_keras that is
  the new optimizer, so they are built on the legacy ``OptimizerV2`` base instead.
- bert4keras writes checkpoints through TF1 sessions; ``save_bert_checkpoint`` writes the
  same Google BERT layout in eager mode, and ``load_bert_checkpoint`` checks shapes first.
- ``dropout_seeds``: Keras dropout layers traced under it draw stateless masks from a seed
  tensor, so a traced training step restarts its dropout streams by assignment, not retracing.
- TensorFlow allocates CPU memory with its BFC allocator (``TF_CPU_ALLOCATOR_USE_BFC``), not
  malloc, unless the environment says otherwise.
- TensorFlow's C++ start-up lines (absl's preamble, oneDNN, "could not find cuda drivers",
  the cuInit error) reach stderr before ``TF_CPP_MIN_LOG_LEVEL`` applies: they are held back
  while TensorFlow loads, and only lines above that level that are not this noise are shown.

Eager mode stays on: ``tf.distribute`` and ``tf.function`` need it.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ["TF_KERAS"] = "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's CPU tensors come from malloc, which serves the step's large buffers (the MLM
# logits, the embedding's copy) with fresh mmaps that page-fault anew on every step: ~20% of a
# pretraining step on 2 cores. TF's BFC allocator keeps freed memory for the next step.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import numpy as np  # noqa: E402

from wobert.errors import UserError, damaged  # noqa: E402
from wobert.jsonfile import read_json  # noqa: E402

START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations|cuda drivers|cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|computation placer")
SEVERITY = re.compile(r"^([IWEF])\d{4} ")


@contextlib.contextmanager
def _native_start_up_lines() -> Iterator[None]:
    """Hold back what native code writes to fd 2 meanwhile; then show the lines that are
    neither start-up noise nor below ``TF_CPP_MIN_LOG_LEVEL`` (Python errors pass as usual)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0)
            for line in held.read().decode("utf-8", "replace").splitlines():
                severity = SEVERITY.match(line)
                if START_UP_NOISE.search(line) or (severity and "IWEF".index(severity[1]) < level):
                    continue
                print(line, file=sys.stderr)


with _native_start_up_lines():
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices()  # the cuInit attempt, while the lines are held back

BERT4KERAS_INSTALL = "pip install --no-deps bert4keras==0.11.5"

try:
    import bert4keras.models  # noqa: E402
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "wobert needs bert4keras 0.11.5, installed without its dependencies "
        f"(its metadata pins keras<=2.3.1). Run: {BERT4KERAS_INSTALL}  (or: make setup)"
    ) from err

from bert4keras.backend import K, keras, piecewise_linear  # noqa: E402
from bert4keras.layers import Dropout, MultiHeadAttention  # noqa: E402
from bert4keras.models import BERT, build_transformer_model  # noqa: E402
from bert4keras.tokenizers import Tokenizer as Bert4kerasTokenizer  # noqa: E402
from bert4keras.tokenizers import load_vocab  # noqa: E402
from tf_keras.src import backend as keras_backend  # noqa: E402


class TruncatedNormal(keras.initializers.Initializer):
    """Truncated normal that draws new values on every call (seeded by ``set_seed``).

    tf_keras initializers without a seed return the same values on each call of one
    instance, and bert4keras reuses one instance for the query, key, value and output
    kernels of a layer, which would start them all equal.
    """

    def __init__(self, stddev: float = 0.02) -> None:
        self.stddev = stddev

    def __call__(self, shape: Any, dtype: Any = None, **kwargs: Any) -> tf.Tensor:
        return tf.random.truncated_normal(shape, stddev=self.stddev, dtype=dtype or K.floatx())

    def get_config(self) -> dict[str, float]:
        return {"stddev": self.stddev}


bert4keras.models.Transformer.initializer = property(lambda self: TruncatedNormal(0.02))


class _DropoutSeed(threading.local):
    """The seed of the dropout masks traced in this thread (MirroredStrategy traces each
    replica in a thread of its own), and how many masks have been drawn from it."""
    seed: tf.Tensor | None = None
    drawn: int = 0


_DROPOUT_SEED = _DropoutSeed()
_keras_dropout = keras_backend.RandomGenerator.dropout


def _dropout(self: keras_backend.RandomGenerator, inputs: tf.Tensor, rate: float,
             noise_shape: Any = None) -> tf.Tensor:
    """Keras's dropout; under ``dropout_seeds``, the n-th mask traced is stateless, drawn
    from the seed folded with n."""
    if _DROPOUT_SEED.seed is None:
        return _keras_dropout(self, inputs, rate, noise_shape)
    seed = tf.random.experimental.stateless_fold_in(_DROPOUT_SEED.seed, _DROPOUT_SEED.drawn)
    _DROPOUT_SEED.drawn += 1
    return tf.nn.experimental.stateless_dropout(inputs, rate, seed, noise_shape=noise_shape)


keras_backend.RandomGenerator.dropout = _dropout


@contextlib.contextmanager
def dropout_seeds(seed: tf.Tensor) -> Iterator[None]:
    """Trace the Keras dropout layers called meanwhile (in this thread) as stateless ops
    seeded by ``seed`` (shape [2], int32/int64): the same seed, the same masks; a new seed
    (say, a step counter folded in) new masks, in the same traced graph."""
    outer = _DROPOUT_SEED.seed, _DROPOUT_SEED.drawn
    _DROPOUT_SEED.seed, _DROPOUT_SEED.drawn = seed, 0
    try:
        yield
    finally:
        _DROPOUT_SEED.seed, _DROPOUT_SEED.drawn = outer


def _import_optimizers() -> Any:
    """Import bert4keras.optimizers with the legacy OptimizerV2 as its base class."""
    new_base = keras.optimizers.Optimizer
    keras.optimizers.Optimizer = keras.optimizers.legacy.Optimizer
    try:
        from bert4keras import optimizers
    finally:
        keras.optimizers.Optimizer = new_base
    return optimizers


optimizers = _import_optimizers()

NO_DECAY = ("Norm", "bias", "Bias")


def linear_schedule(warmup_steps: int, total_steps: int | None) -> dict[int, float]:
    """bert4keras's ``lr_schedule``: linear warm-up to 1, then linear decay to 0 at ``total_steps``."""
    schedule = {int(warmup_steps): 1.0}
    if total_steps and total_steps > warmup_steps:
        schedule[int(total_steps)] = 0.0
    return schedule


def adamw(
    learning_rate: float,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    clipnorm: float | None = None,
    exclude_from_weight_decay: Sequence[str] = NO_DECAY,
) -> keras.optimizers.legacy.Optimizer:
    """bert4keras AdamW with linear warm-up then linear decay to zero at ``total_steps``: the
    reference ``wobert.optimization.AdamW`` matches (WoBERT's optimizer; benchmarks and tests).

    Weight decay skips variables whose names contain any of ``exclude_from_weight_decay``
    (LayerNorm and biases by default). ``clipnorm`` clips by global norm inside the optimizer.
    """
    AdamW = optimizers.extend_with_weight_decay_v2(optimizers.Adam, "AdamW")
    AdamWLR = optimizers.extend_with_piecewise_linear_lr_v2(AdamW, "AdamWLR")
    kwargs = {"global_clipnorm": clipnorm} if clipnorm else {}
    return AdamWLR(
        learning_rate=learning_rate,
        weight_decay_rate=weight_decay,
        exclude_from_weight_decay=list(exclude_from_weight_decay),
        lr_schedule=linear_schedule(warmup_steps, total_steps),
        **kwargs,
    )


# ---------------------------------------------------------------------------------------
# Checkpoints in the Google BERT layout
# ---------------------------------------------------------------------------------------


#: a TF checkpoint prefix, or Google BERT variable names -> arrays (bert4keras loads a dict too)
Checkpoint = str | os.PathLike | dict[str, np.ndarray]


class CheckpointMismatch(UserError):
    """A checkpoint does not fit the model (missing variable or wrong shape), or is damaged."""


def first_line(err: BaseException) -> str:
    """The first line of a (TensorFlow) error, without the op details TF appends."""
    text = (getattr(err, "message", None) or str(err)).strip().splitlines()
    return re.sub(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", text[0] if text else repr(err))


def _checkpoint_tensors(checkpoint: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Each variable of a TF checkpoint (name, array), by name; a truncated or corrupted file
    raises ``CheckpointMismatch`` naming it (TF checks each tensor's CRC)."""
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
        for name in sorted(reader.get_variable_to_shape_map()):
            yield name, reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as err:  # IndexError: a data file cut short
        raise CheckpointMismatch(damaged(f"checkpoint {checkpoint}", first_line(err))) from None


def check_checkpoint_data(checkpoint: str | os.PathLike) -> None:
    """Read every tensor of a TF checkpoint once, so a damaged file is refused before any
    weight is loaded."""
    for _ in _checkpoint_tensors(checkpoint):
        pass


def _checkpoint_values(transformer: Any) -> dict[str, np.ndarray]:
    """Map Google BERT variable names to the values of a bert4keras Transformer."""
    values: dict[str, np.ndarray] = {}
    for layer_name, names in transformer.variable_mapping().items():
        layer_name = transformer.prefixed(layer_name)
        if layer_name not in transformer.layers:
            continue
        weights = transformer.layers[layer_name].trainable_weights
        for name, weight in zip(names, weights):
            value = np.asarray(weight.numpy())
            if name == "cls/seq_relationship/output_weights":
                value = value.T
            values[name] = value
    return values


def save_bert_checkpoint(transformer: Any, prefix: str | os.PathLike,
                         extra: Mapping[str, np.ndarray] | None = None) -> str:
    """Write a bert4keras Transformer's weights as a Google BERT TF checkpoint (eager-safe),
    with the variables of ``extra`` (e.g. a classifier's ``output_weights``) beside them.

    ``prefix`` is e.g. ``DIR/bert_model.ckpt``; a ``checkpoint`` state file is written beside
    it so ``tf.train.latest_checkpoint(DIR)`` finds it.
    """
    return write_checkpoint(prefix, {**_checkpoint_values(transformer), **(extra or {})})


def write_checkpoint(prefix: str | os.PathLike, values: Mapping[str, np.ndarray]) -> str:
    """Write name -> array as a TF checkpoint at ``prefix``, and its ``checkpoint`` state file."""
    prefix = str(prefix)
    names = sorted(values)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n]) for n in names],
    )
    state = Path(prefix).parent / "checkpoint"
    base = Path(prefix).name
    state.write_text(
        f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n',
        encoding="utf-8",
    )
    return prefix


def read_checkpoint(checkpoint: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint, name -> array (a damaged file: ``CheckpointMismatch``)."""
    return dict(_checkpoint_tensors(checkpoint))


def check_bert_checkpoint(transformer: Any, checkpoint: Checkpoint) -> None:
    """Raise ``CheckpointMismatch`` naming the variable if ``checkpoint`` does not fit.

    ``checkpoint``: a TF checkpoint prefix, or Google BERT names -> arrays (weights read from
    another layout; their ``source`` attribute, if any, names them in messages).
    """
    if isinstance(checkpoint, Mapping):
        stored = {name: list(np.shape(value)) for name, value in checkpoint.items()}
        checkpoint = str(getattr(checkpoint, "source", "weights"))
    else:
        checkpoint = str(checkpoint)
        try:
            stored = dict(tf.train.list_variables(checkpoint))
        except (tf.errors.OpError, ValueError) as err:
            raise CheckpointMismatch(f"cannot read checkpoint {checkpoint!r}: {first_line(err)}") from None
    expected = _checkpoint_values(transformer)
    problems = []
    for name, value in expected.items():
        if name not in stored:
            problems.append(f"{name} is missing")
            continue
        shape = list(stored[name])
        if name in ("bert/embeddings/word_embeddings", "cls/predictions/output_bias"):
            rows = _expected_vocab_rows(transformer, shape[0])
            if rows != value.shape[0]:
                problems.append(
                    f"{name}: checkpoint has {shape[0]} tokens, the model's vocab has "
                    f"{value.shape[0]}" + (f" (keep/compound tokens give {rows})"
                                            if rows != shape[0] else "")
                )
            continue
        if name == "cls/seq_relationship/output_weights":
            shape = shape[::-1]
        if tuple(shape) != value.shape:
            problems.append(f"{name}: checkpoint shape {tuple(shape)}, model {value.shape}")
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {checkpoint!r} does not fit the model: " + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )


def _expected_vocab_rows(transformer: Any, stored_rows: int) -> int:
    """Rows the embedding has after keep_tokens/compound_tokens are applied to the checkpoint."""
    keep = transformer.keep_tokens
    if keep is not None and len(keep) and max(keep) >= stored_rows:
        return -1
    rows = len(keep) if keep is not None else stored_rows
    return rows + len(transformer.compound_tokens or [])


def build_bert(
    config: Mapping[str, Any] | str | os.PathLike,
    checkpoint: Checkpoint | None = None,
    *,
    with_mlm: bool = False,
    with_pool: bool = False,
    keep_tokens: Sequence[int] | None = None,
    compound_tokens: Sequence[Sequence[int]] | None = None,
    model: str = "bert",
    **kwargs: Any,
) -> Any:
    """Build a bert4keras Transformer (``return_keras_model=False``); its ``.model`` is Keras.

    ``config`` is a ``bert_config.json`` path or a dict of the same keys; ``checkpoint`` a TF
    checkpoint prefix or a dict of Google BERT names -> arrays. A checkpoint that does not fit
    raises ``CheckpointMismatch`` before any weight is loaded.
    """
    if not isinstance(config, Mapping):
        config = read_bert_config(config)
    config = dict(config)
    transformer = build_transformer_model(
        model=model,
        with_mlm=with_mlm,
        with_pool=with_pool,
        keep_tokens=list(keep_tokens) if keep_tokens is not None else None,
        compound_tokens=[list(c) for c in compound_tokens] if compound_tokens else None,
        return_keras_model=False,
        **config,
        **kwargs,
    )
    if checkpoint is not None:
        check_bert_checkpoint(transformer, checkpoint)
        if not isinstance(checkpoint, dict):
            check_checkpoint_data(checkpoint)
        transformer.load_weights_from_checkpoint(
            checkpoint if isinstance(checkpoint, dict) else str(checkpoint))
    return transformer


def read_bert_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``bert_config.json`` with a clear error for a missing or malformed file."""
    config = read_json(path, "BERT config")
    required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size")
    missing = [k for k in required if k not in config]
    if missing:
        raise UserError(f"{path}: BERT config lacks {', '.join(missing)}")
    return config


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


__all__ = [
    "tf", "keras", "K", "np", "BERT", "MultiHeadAttention", "Dropout", "build_transformer_model",
    "build_bert", "load_vocab",
    "Bert4kerasTokenizer", "optimizers", "adamw", "linear_schedule", "piecewise_linear",
    "save_bert_checkpoint", "check_bert_checkpoint", "check_checkpoint_data", "CheckpointMismatch",
    "Checkpoint", "write_checkpoint", "read_checkpoint", "first_line",
    "read_bert_config", "set_seed", "dropout_seeds", "BERT4KERAS_INSTALL", "NO_DECAY",
]
