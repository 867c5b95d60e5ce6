"""MLM pretraining: a custom TF2 loop built to run for days.

- Steps are ``tf.function``s under a ``tf.distribute`` strategy: MultiWorkerMirroredStrategy
  when ``TF_CONFIG`` is set, MirroredStrategy for several local GPUs, else the default one.
  Each worker reads its own shard of the records through its own ``tf.data`` iterator.
- The loss is the sum of cross-entropies at the masked positions (weighted by
  ``masked_weights``); ``GradientAccumulator`` adds those sums over ``accumulate``
  micro-batches and all replicas and divides by the masked-token count, clips, and applies
  AdamW (linear warm-up, then linear decay). Optional mixed precision on GPU.
- Checkpoints (``wobert.checkpoints``: model + optimizer, step, each worker's input state) go to
  ``OUT/checkpoints/step-N``: written under a temporary name, flushed to disk, renamed, with
  the size and sha256 of every file; the newest ``keep_checkpoints`` stay. A failed write (a
  full disk) stops the run with one line and leaves the older checkpoints as they were.
  ``resume`` checks the newest checkpoint and falls back to the newest complete one, saying
  so; it restores the input iterators, so resuming costs the same at any step. Dropout masks
  are stateless, drawn from (seed, the last checkpoint's step, steps since, replica, layer),
  so a resumed run repeats the uninterrupted one exactly on CPU, with one worker or several.
- A step with a non-finite loss or gradient norm is skipped (not applied) and counted in the
  logs; ``max_bad_steps`` of them in a row stop the run, naming the last good checkpoint.
  Unreadable records stop it naming the damaged shard; a lost worker, saying to restart all.
- Logs: tqdm bar, ``OUT/metrics.jsonl``, TensorBoard events in ``OUT/tensorboard``; at the end
  the model is exported to ``OUT/export`` in the Google BERT layout.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from wobert.backend import dropout_seeds, first_line, keras, set_seed, tf
from wobert.checkpoints import Checkpoints, CheckpointState
from wobert.checks import check_field_types, check_output_dir
from wobert.config import load_job
from wobert.dataset import make_dataset
from wobert.errors import UserError
from wobert.jsonfile import write_json
from wobert.layouts import config_file
from wobert.manifest import VOCAB_SUBDIR, Manifest, check_records
from wobert.model import (
    ARCHITECTURE,
    DROPOUT,
    MLMModel,
    Vocabulary,
    build_mlm_model,
    check_bert_config,
    export_bert,
    init_config,
    init_from_bert,
    mlm_loss,
    mlm_sums,
    read_vocabulary,
)
from wobert.optimization import AdamW, GradientAccumulator, LossScale, all_reduce, clip_scale, global_norm

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


@dataclass
class PretrainConfig:
    """One pretraining job (``pretrain/*.json``). ``batch_size`` is global per micro-batch:
    an optimizer step sees ``batch_size * accumulate`` sequences over all replicas."""

    model: dict[str, Any] = field(default_factory=dict)  # bert_config.json keys, no vocab_size
    vocab: str | None = None  # vocabulary directory (default: DATA/vocab, kept by the records)
    init: str | None = None  # BERT directory to start from (its architecture wins)
    batch_size: int = 32
    accumulate: int = 1
    steps: int = 1000
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    clipnorm: float = 1.0
    seed: int = 0
    deterministic: bool = True  # TF op determinism: exact resume; may cost speed on GPU
    shuffle: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    jit_compile: bool = False  # the whole training step compiled by XLA (one replica per process)
    max_bad_steps: int = 10  # non-finite steps in a row (each skipped) before the run stops

    def __post_init__(self) -> None:
        check_field_types(self, "pretrain config")
        for name in ("batch_size", "accumulate", "steps", "checkpoint_every", "keep_checkpoints",
                     "log_every", "max_bad_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"pretrain config: {name} must be a positive integer, not {value!r}")
        if self.warmup_steps < 0 or self.learning_rate <= 0 or self.weight_decay < 0:
            raise UserError("pretrain config: warmup_steps and weight_decay must be >= 0, "
                             "learning_rate > 0")
        unknown = set(self.model) - set(ARCHITECTURE + DROPOUT + ("hidden_act", "initializer_range"))
        if unknown:
            raise UserError(f"pretrain config: unknown model key(s) {', '.join(sorted(unknown))}")
        if self.model and not self.init:  # with init, the init model's config wins
            check_bert_config(self.model, where="pretrain config: model")


def load_config(path: str | os.PathLike, **overrides: Any) -> PretrainConfig:
    """Read a config JSON; ``overrides`` that are not None replace its values."""
    return load_job(PretrainConfig, path, what="pretrain", overrides=overrides)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


class DataSource(Protocol):
    """Pretraining batches (the dicts of ``wobert.dataset.make_dataset``) and their manifest."""

    manifest: Manifest

    def dataset(self, batch_size: int, *, seed: int, shuffle: bool, skip_batches: int,
                input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        """Endless batches of ``batch_size``; the stream is a function of ``seed`` (and the
        input pipeline) only, and starts after ``skip_batches`` of them."""

    def verify(self) -> None:
        """Raise ``UserError`` naming what is damaged (called when reading failed)."""


class Records:
    """TFRecord shards written by ``wobert data`` (issue 5's reader, repeated forever)."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data directory not found: {self.data_dir}")
        self.manifest = Manifest.read(self.data_dir)
        if not self.manifest.complete:
            raise UserError(f"{self.data_dir}: the records are incomplete; re-run `wobert data build`")
        if not sum(s.sequences for s in self.manifest.shards):
            raise UserError(f"{self.data_dir}: the records hold no sequences (empty corpus?)")
        check_records(self.data_dir, self.manifest)

    def dataset(self, batch_size: int, *, seed: int, shuffle: bool, skip_batches: int,
                input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        return make_dataset(self.data_dir, batch_size, shuffle=shuffle, seed=seed,
                            repeat=True, input_context=input_context, skip_batches=skip_batches)

    def verify(self) -> None:
        check_records(self.data_dir, self.manifest, full=True)


def check_data(manifest: Manifest, vocab: Vocabulary) -> None:
    """The records must have been built with this vocabulary."""
    manifest.check_vocabulary(vocab.size, vocab.sha256, vocab.vocab_file)


# ---------------------------------------------------------------------------------------
# Distribution
# ---------------------------------------------------------------------------------------


def pick_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirrored with TF_CONFIG, Mirrored for several GPUs, else the default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def worker_id(strategy: tf.distribute.Strategy) -> int:
    """This worker's index (0 = the chief, who writes logs, checkpoints and the export)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return int(resolver.task_id) + (1 if has_chief else 0)


def input_pipelines(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(number of workers, this one's index): one input pipeline per worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    tasks = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return max(1, len(tasks.get("chief", [])) + len(tasks.get("worker", []))), worker_id(strategy)


# ---------------------------------------------------------------------------------------
# The compiled training steps
# ---------------------------------------------------------------------------------------


def segment_seed(seed: int, step: int) -> int:
    """The dropout seed from ``step`` on: a function of (seed, step) only."""
    return (seed * 1_000_003 + step) % (2**31 - 1)


class Trainer:
    """Model, AdamW, gradient accumulator (and loss scale) under a strategy; the compiled steps.

    ``step(iterator, accumulate)`` runs ``accumulate - 1`` micro-steps (forward/backward, the
    gradients added up per replica) and one applying step: forward/backward on the last
    micro-batch, all-reduce, clipping and the AdamW update in one ``tf.function``
    (``iterator``: this worker's batches, one per local replica). It returns the summed
    ``[loss, correct, masked, tokens]`` over micro-batches and replicas, the global norm of the
    mean gradient, and whether the step was good. A step whose loss or gradient norm is not
    finite changes no weight (AdamW's ``finite``) and is not good. ``mixed_precision`` sets the
    global Keras policy to mixed_float16 (the MLM head stays float32) and scales the loss
    dynamically; a float16 overflow skips the update too, but is the loss scale's business:
    such a step counts as good unless its loss is not finite.
    """

    def __init__(self, build: Callable[[], MLMModel], config: PretrainConfig,
                 strategy: tf.distribute.Strategy | None = None, mixed_precision: bool = False,
                 maxlen: int | None = None) -> None:
        self.strategy = strategy or tf.distribute.get_strategy()
        self.maxlen = maxlen
        self.mixed_precision = mixed_precision
        self.clipnorm = config.clipnorm
        self.jit_compile = config.jit_compile and self.strategy.num_replicas_in_sync == 1
        if config.jit_compile and not self.jit_compile:
            log.warning("jit_compile needs one replica per process; training without XLA")
        if self.jit_compile and not maxlen:
            raise ValueError("jit_compile needs the sequences' maxlen (every batch is padded to it)")
        if mixed_precision:  # stays set: bert4keras creates attention dropout layers when traced
            keras.mixed_precision.set_global_policy("mixed_float16")
        with self.strategy.scope():
            self.mlm = build()
            self.variables = self.mlm.model.trainable_variables
            self.optimizer = AdamW(self.variables, config.learning_rate,
                                   weight_decay=config.weight_decay, warmup_steps=config.warmup_steps,
                                   total_steps=config.steps, sparse="dense")
            self.accumulator = GradientAccumulator(self.variables) if config.accumulate > 1 else None
            self.loss_scale = LossScale() if mixed_precision else None
        self.checkpoint = tf.train.Checkpoint(model=self.mlm.transformer.model, optimizer=self.optimizer,
                                              **({"loss_scale": self.loss_scale} if mixed_precision else {}))
        self.local_replicas = self.strategy.num_replicas_in_sync // input_pipelines(self.strategy)[0]
        with tf.device("CPU:0"):  # (seed, steps since): this worker's, not mirrored
            self.dropout_seed = tf.Variable([config.seed, 0], dtype=tf.int64, trainable=False)
        self.micro_step = self._compile(self._replica_micro_step)
        self.train_step = self._compile(self._replica_train_step)

    def reseed(self, seed: int) -> None:
        """Restart the dropout streams: from here on the masks depend on ``seed``, the
        (micro-)steps since, the replica and the layer only (no retracing)."""
        self.dropout_seed.assign([seed, 0])

    def _compile(self, replica_step: Callable) -> Callable:
        """``replica_step`` as a ``tf.function`` of the iterator, run on every replica; totals
        summed over the replicas (the norm and verdict, the same on all, from the first). Each
        call draws its dropout masks from the next dropout seed and the replica's index."""
        def seeded(batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> Any:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            with dropout_seeds(tf.random.experimental.stateless_fold_in(seed, replica)):
                return replica_step(batch)

        if self.jit_compile:  # one replica: XLA compiles its step whole, for one batch shape
            compiled = tf.function(seeded, jit_compile=True)
            return tf.function(lambda iterator: compiled(self._padded(next(iterator)), self._next_seed()))

        def step(iterator: Iterator) -> Any:
            out = self.strategy.run(seeded, (self._next_batches(iterator), self._next_seed()))
            if not isinstance(out, tuple):
                return self.strategy.reduce(tf.distribute.ReduceOp.SUM, out, axis=None)
            totals, *same = out
            return (self.strategy.reduce(tf.distribute.ReduceOp.SUM, totals, axis=None),
                    *(self.strategy.experimental_local_results(x)[0] for x in same))

        return tf.function(step)

    def _next_seed(self) -> tf.Tensor:
        """The dropout seed of the next (micro-)step."""
        return self.dropout_seed.assign_add(tf.constant([0, 1], tf.int64))

    def _next_batches(self, iterator: Iterator) -> Any:
        """The next batch of each local replica from this worker's own iterator (whose
        position a checkpoint keeps): consecutive batches to consecutive replicas."""
        if self.local_replicas == 1:
            return next(iterator)
        batches = [next(iterator) for _ in range(self.local_replicas)]
        return self.strategy.experimental_distribute_values_from_function(
            lambda ctx: batches[ctx.replica_id_in_sync_group % self.local_replicas])

    def _padded(self, batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The batch's sequences padded to ``maxlen`` tokens."""
        pad = [[0, 0], [0, self.maxlen - tf.shape(batch["token_ids"])[1]]]
        return {k: tf.pad(v, pad) if k in ("token_ids", "segment_ids") else v for k, v in batch.items()}

    def _gradients(self, batch: Mapping[str, tf.Tensor]) -> tuple[list, tf.Tensor]:
        """Gradients of the summed MLM loss of a batch, and its ``[loss, correct, masked, tokens]``."""
        inputs = [batch["token_ids"], batch["segment_ids"], batch["masked_positions"]]
        with tf.GradientTape() as tape:
            logits = self.mlm.model(inputs, training=True)
            sums = mlm_sums if self.jit_compile else mlm_loss  # a whole compiled step: see mlm_loss
            loss, correct, weight = sums(logits, batch["masked_ids"], batch["masked_weights"])
            if self.mixed_precision:  # scale the mean: float16 gradients then fit any batch size
                scaled = loss / tf.maximum(weight, 1.0) * self.loss_scale.scale
        if self.mixed_precision:
            unscale = tf.maximum(weight, 1.0) / self.loss_scale.scale
            grads = [None if g is None else tf.convert_to_tensor(g) * unscale
                     for g in tape.gradient(scaled, self.variables)]
        else:
            grads = tape.gradient(loss, self.variables)
        tokens = tf.reduce_sum(tf.cast(batch["token_ids"] != 0, tf.float32))
        return self.optimizer.prepare(grads), tf.stack([loss, correct, weight, tokens])

    def _replica_micro_step(self, batch: Mapping[str, tf.Tensor]) -> tf.Tensor:
        grads, totals = self._gradients(batch)
        self.accumulator.add(grads, totals[2])
        return totals

    def _replica_train_step(self, batch: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        grads, totals = self._gradients(batch)
        weight = totals[2]
        if self.accumulator is not None:
            grads, weight = self.accumulator.take(grads, weight)
        grads, summed = all_reduce(grads, tf.stack([weight, totals[0]]))
        weight, loss = summed[0], summed[1]
        norm = global_norm(grads)
        finite = tf.math.is_finite(norm) & tf.math.is_finite(loss)
        self.optimizer.apply(grads, clip_scale(norm, self.clipnorm, weight), finite)
        if self.loss_scale is not None:
            self.loss_scale.update(finite)
        good = tf.math.is_finite(loss) if self.loss_scale is not None else finite
        return totals, norm / tf.maximum(weight, 1e-9), good

    def step(self, iterator: Iterator, accumulate: int = 1) -> tuple[Any, float, bool]:
        """One optimizer step over ``accumulate`` micro-batches: (summed totals, grad norm,
        whether it was good)."""
        totals = sum(self.micro_step(iterator) for _ in range(accumulate - 1))
        last, norm, good = self.train_step(iterator)
        totals = (totals + last).numpy()
        return totals, float(norm), bool(good) and math.isfinite(totals[0])

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return self.optimizer.learning_rate(step)


# ---------------------------------------------------------------------------------------
# Input position
# ---------------------------------------------------------------------------------------


class InputStream:
    """This worker's batches: its own ``tf.data`` iterator over its share of the data, whose
    state (position, shuffle buffer, epoch) a checkpoint saves, so a resume continues where
    it stopped in constant time. Without a saved state (none yet, or the stream changed) it
    starts ``position`` micro-batches in by skipping them."""

    def __init__(self, data: DataSource, config: PretrainConfig, strategy: tf.distribute.Strategy,
                 position: int, saved: str | None = None) -> None:
        count, index = input_pipelines(strategy)
        replicas = strategy.num_replicas_in_sync
        context = tf.distribute.InputContext(count, index, replicas)
        skip = 0 if saved else position * (replicas // count)
        dataset = data.dataset(context.get_per_replica_batch_size(config.batch_size), seed=config.seed,
                               shuffle=config.shuffle, skip_batches=skip, input_context=context)
        self.iterator = iter(dataset)
        self.checkpoint = tf.train.Checkpoint(iterator=self.iterator)
        self.name = f"input-{index}"
        if saved:
            self.checkpoint.read(saved).assert_consumed()

    def save(self, directory: Path) -> None:
        """Write the position as ``directory/input-K.*`` (K: this worker)."""
        self.checkpoint.write(str(directory / self.name))


def stream_of(config: PretrainConfig, replicas: int, pipelines: int) -> dict[str, Any]:
    """What the data stream depends on (:data:`wobert.checkpoints.STREAM_KEYS`): a saved
    input position fits only the same."""
    return {"batch_size": config.batch_size, "replicas": replicas, "input_pipelines": pipelines,
            "seed": config.seed, "shuffle": config.shuffle}


# ---------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------


SCALAR = tf.compat.v1.SummaryMetadata(plugin_data={"plugin_name": "scalars"})
"""What ``tf.summary.scalar`` attaches to a value (it needs the tensorboard package; this not)."""


class Metrics:
    """Sums over a logging interval, written to metrics.jsonl, TensorBoard and the bar."""

    def __init__(self, out_dir: Path, start_step: int, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.writer = None
        if enabled:
            keep_history(self.path, start_step)
            self.writer = tf.summary.create_file_writer(str(out_dir / "tensorboard"))
        self.reset()

    def reset(self) -> None:
        self.loss = self.correct = self.weight = self.tokens = self.norm = self.seconds = 0.0
        self.steps = self.skipped = 0

    def add(self, totals: Any, norm: float, seconds: float, applied: bool = True) -> None:
        """Add one step; a skipped (not finite) step counts apart, its loss left out."""
        loss, correct, weight, tokens = (float(x) for x in totals)
        self.tokens, self.seconds = self.tokens + tokens, self.seconds + seconds
        if not applied:
            self.skipped += 1
            return
        self.loss, self.correct, self.weight = self.loss + loss, self.correct + correct, self.weight + weight
        self.norm, self.steps = self.norm + norm, self.steps + 1

    def flush(self, step: int, lr: float) -> dict[str, Any] | None:
        """Write the interval's averages as the record of ``step``; return it. ``loss``,
        ``accuracy`` and ``grad_norm`` are None when every step of the interval was skipped."""
        if not self.steps and not self.skipped:
            return None
        applied = self.steps > 0
        record = {
            "step": step,
            "loss": self.loss / max(self.weight, 1.0) if applied else None,
            "accuracy": self.correct / max(self.weight, 1.0) if applied else None,
            "lr": lr,
            "grad_norm": self.norm / self.steps if applied else None,
            "tokens_per_sec": self.tokens / max(self.seconds, 1e-9),
            "masked_tokens": self.weight,
            "skipped_steps": self.skipped,
        }
        self.reset()
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            with self.writer.as_default(step=step):
                for name in ("loss", "accuracy", "lr", "grad_norm", "tokens_per_sec", "skipped_steps"):
                    if record[name] is not None:
                        tf.summary.write(name, tf.constant(record[name], tf.float32), metadata=SCALAR)
            self.writer.flush()
        return record


def keep_history(path: Path, last_step: int) -> None:
    """Drop records after ``last_step`` (written by a run killed after its last checkpoint),
    and a line cut short by the kill."""
    if not path.is_file():
        return
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= last_step:
                    kept.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
    path.write_text("".join(kept), encoding="utf-8")


def postfix(record: Mapping[str, Any], skipped: int = 0) -> dict[str, str]:
    """The bar's fields: the last record's metrics, and the steps skipped so far, if any."""
    shown = {"loss": record["loss"], "acc": record["accuracy"]}
    fields = {k: "-" if v is None else f"{v:.3f}" for k, v in shown.items()}
    fields.update({"lr": f"{record['lr']:.2e}", "tok/s": f"{record['tokens_per_sec']:.0f}"})
    return {**fields, "skipped": str(skipped)} if skipped else fields


# ---------------------------------------------------------------------------------------
# The training run
# ---------------------------------------------------------------------------------------


def model_config(config: PretrainConfig, vocab: Vocabulary, maxlen: int | None) -> dict[str, Any]:
    """The BERT config the run trains (from the init model when there is one), checked."""
    if config.init:
        model, _ = init_config(config.init, config.model)
        where = str(config_file(config.init))
    else:
        model, where = dict(config.model), "pretrain config: model"
    return check_bert_config({**model, "vocab_size": vocab.size}, maxlen=maxlen, where=where)


def build_model(config: PretrainConfig, vocab: Vocabulary, model: dict[str, Any],
                from_init: bool) -> MLMModel:
    if from_init and config.init:
        return init_from_bert(config.init, vocab, {k: model[k] for k in DROPOUT if k in model})
    return build_mlm_model(model)


def check_resume(state: CheckpointState, model: Mapping[str, Any], vocab: Vocabulary,
                 stream: Mapping[str, Any], path: Path) -> bool:
    """Refuse a checkpoint of another vocabulary or architecture. Returns whether its saved
    input positions fit this run's data stream (else: warn, and skip to about the position)."""
    if state.vocab_sha256 != vocab.sha256:
        raise UserError(f"checkpoint {path} was trained with another vocab.txt than {vocab.vocab_file}")
    saved = state.model or {}
    changed = [k for k in ARCHITECTURE + ("vocab_size",) if saved.get(k) != model.get(k)]
    if changed:
        raise UserError(f"checkpoint {path} has another architecture: " + ", ".join(
            f"{k} {saved.get(k)} vs {model.get(k)}" for k in changed))
    saved_stream = state.stream()
    differ = [k for k, v in stream.items() if saved_stream[k] != v]
    if differ:
        log.warning("resuming with another %s than checkpoint %s: the data stream continues "
                    "from about the same position, not exactly", "/".join(differ), path)
    return not differ


def agree_on_step(strategy: tf.distribute.Strategy, step: int) -> None:
    """Every worker must resume from the same checkpoint (they share the run directory)."""
    if input_pipelines(strategy)[0] == 1:
        return

    @tf.function
    def sums() -> tf.Tensor:  # of the steps and their squares: equal iff n * squares == sum ** 2
        steps = strategy.run(lambda: tf.constant([step, step * step], tf.int64))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, steps, axis=None)

    total, squares = (int(x) for x in sums().numpy())
    if total * total != strategy.num_replicas_in_sync * squares:
        raise UserError(f"the workers found different checkpoints to resume from (this one: step "
                        f"{step}): do they share one run directory?")


def train(
    config: PretrainConfig,
    data: DataSource,
    out_dir: str | os.PathLike,
    vocab: Vocabulary,
    *,
    resume: bool = False,
    mixed_precision: bool = False,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[str, Any]:
    """Pretrain (or resume) into ``out_dir``; returns the last step, its metrics record and
    the export directory (None on workers other than the chief).

    Everything the user can get wrong is checked before the model is built. ``resume``
    continues from the newest complete checkpoint (newer damaged ones are skipped, saying so).
    """
    out_dir = check_output_dir(out_dir)
    strategy = strategy or pick_strategy()
    worker, replicas = worker_id(strategy), strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UserError(f"batch_size {config.batch_size} is not divisible by the {replicas} replicas")
    check_data(data.manifest, vocab)
    if config.warmup_steps >= config.steps:
        log.warning("warmup_steps %d >= steps %d: the learning rate never reaches %g", config.warmup_steps,
                    config.steps, config.learning_rate)
    model = model_config(config, vocab, data.manifest.maxlen)
    checkpoints = Checkpoints(out_dir / "checkpoints", config.keep_checkpoints, worker)
    latest = checkpoints.latest()
    if latest and not resume:
        raise UserError(f"{out_dir} already holds checkpoints (latest {latest.name}): "
                        "pass --resume to continue, or choose another --out")
    path, state = ((checkpoints.newest_complete() if latest else None)
                   or (None, CheckpointState(step=0, data_position=0)))
    stream = stream_of(config, replicas, input_pipelines(strategy)[0])
    same_stream = path is not None and check_resume(state, model, vocab, stream, path)
    if path is not None:
        model = state.model
    agree_on_step(strategy, state.step)
    if worker == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.clean()
        run_config = {**asdict(config), "model": model, "vocab": str(vocab.directory)}
        write_json(out_dir / "run_config.json", run_config)
    if config.deterministic:
        set_seed(config.seed)
    else:
        keras.utils.set_random_seed(config.seed)
    trainer = Trainer(lambda: build_model(config, vocab, model, from_init=path is None),
                      config, strategy, mixed_precision, data.manifest.maxlen)
    saved_input = None
    if path is not None:
        checkpoints.restore(trainer.checkpoint, path)
        saved = checkpoints.part(state.step) / f"input-{worker}"
        if same_stream and saved.with_name(saved.name + ".index").is_file():
            saved_input = str(saved)
        elif same_stream:
            log.warning("%s holds no input position: skipping the %d micro-batches read before it",
                        path, state.data_position)
        log.info("resuming from %s", path)
    inputs = InputStream(data, config, strategy, state.data_position, saved_input)
    state = replace(state, model=model, vocab_sha256=vocab.sha256, accumulate=config.accumulate, **stream)
    record = run_steps(trainer, inputs, data, config, state, checkpoints,
                       Metrics(out_dir, state.step, worker == 0))
    export = export_bert(trainer.mlm, out_dir / "export", vocab) if worker == 0 else None
    return {"step": state.step, "last": record, "export": str(export) if export else None}


def checked_step(trainer: Trainer, inputs: InputStream, data: DataSource,
                 accumulate: int) -> tuple[Any, float, bool]:
    """``trainer.step``, with unreadable records and a lost worker as one clear line."""
    try:
        return trainer.step(inputs.iterator, accumulate)
    except tf.errors.DataLossError as err:
        data.verify()  # names the damaged shard
        raise UserError(f"the training data could not be read ({first_line(err)}), although every "
                        "shard matches the manifest: a failing disk?") from None
    except tf.errors.UnavailableError as err:
        raise UserError(f"a worker of the cluster stopped ({first_line(err)}): start every worker "
                        "again with --resume, they continue from the newest complete checkpoint") from None


def too_many_bad_steps(step: int, bad: int, config: PretrainConfig, checkpoints: Checkpoints) -> UserError:
    """The error that stops a run after ``bad`` non-finite steps in a row, ending at ``step``."""
    before = [p for p in checkpoints.all() if checkpoints.step(p) <= step - bad]
    good = f"the last good checkpoint is {before[-1]}" if before else "no checkpoint was saved before them"
    return UserError(f"steps {step - bad + 1}-{step}: {bad} in a row had a non-finite loss or gradient "
                     f"norm and were skipped (max_bad_steps {config.max_bad_steps}): stopped at step "
                     f"{step}; {good}. Lower the learning rate or check the data, then resume")


def run_steps(trainer: Trainer, inputs: InputStream, data: DataSource, config: PretrainConfig,
              state: CheckpointState, checkpoints: Checkpoints, metrics: Metrics) -> dict[str, Any] | None:
    """Train from ``state`` (step, data position) to ``config.steps``, logging and saving
    checkpoints on the way; ``state`` is updated. A step with a non-finite loss or gradient
    norm is skipped (counted in the logs); ``max_bad_steps`` of them in a row stop the run.
    Returns the last metrics record."""
    trainer.reseed(segment_seed(config.seed, state.step))
    record, bad = None, 0
    if state.skipped_steps is None:
        state.skipped_steps = 0
    with tqdm(total=config.steps, initial=state.step, desc="pretrain", unit="step",
              disable=True if checkpoints.worker else None, dynamic_ncols=True) as bar:
        while state.step < config.steps:
            start = time.perf_counter()
            totals, norm, applied = checked_step(trainer, inputs, data, config.accumulate)
            metrics.add(totals, norm, time.perf_counter() - start, applied)
            step = state.step = state.step + 1
            state.data_position += config.accumulate
            bad = 0 if applied else bad + 1
            state.skipped_steps += not applied
            bar.update(1)
            boundary = step % config.checkpoint_every == 0 or step == config.steps
            if boundary or step % config.log_every == 0 or bad >= config.max_bad_steps:
                record = metrics.flush(step, trainer.learning_rate(step - 1)) or record
                bar.set_postfix(postfix(record, state.skipped_steps))
            if bad >= config.max_bad_steps:
                raise too_many_bad_steps(step, bad, config, checkpoints)
            if boundary:
                state.sequences_seen = state.data_position * config.batch_size
                checkpoints.save(trainer.checkpoint, inputs, state)
                if step < config.steps:
                    trainer.reseed(segment_seed(config.seed, step))
    return record


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def resolve_vocab(explicit: str | None, config: PretrainConfig, data_dir: Path,
                  manifest: Manifest) -> Vocabulary:
    """--vocab, else the config's ``vocab``, else the copy the records keep in DATA/vocab."""
    copy = data_dir / VOCAB_SUBDIR
    path = explicit or config.vocab or (copy if copy.is_dir() else manifest.vocab_dir)
    if not path:
        raise UserError(f"which vocabulary? {data_dir} has no {VOCAB_SUBDIR}/: pass --vocab DIR")
    return read_vocabulary(path)
