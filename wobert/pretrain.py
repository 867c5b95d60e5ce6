"""MLM pretraining: a custom TF2 loop built to run for days.

- Steps are ``tf.function``s under a ``tf.distribute`` strategy: MultiWorkerMirroredStrategy
  when ``TF_CONFIG`` is set, MirroredStrategy for several local GPUs, else the default one.
  Each worker reads its own shard of the records (``distribute_datasets_from_function``).
- The loss is the sum of cross-entropies at the masked positions (weighted by
  ``masked_weights``); ``GradientAccumulator`` adds those sums over ``accumulate``
  micro-batches and all replicas and divides by the masked-token count, clips, and applies
  AdamW (linear warm-up, then linear decay). Optional mixed precision on GPU.
- Checkpoints (model + optimizer, step, data position) go to ``OUT/checkpoints/step-N``:
  written under a temporary name, then renamed; the newest ``keep_checkpoints`` stay.
  ``resume`` rebuilds the data stream with the same seed and skips the batches already
  consumed. Dropout draws are re-seeded from (seed, step) at every checkpoint, so a resumed
  run repeats the uninterrupted one exactly on CPU.
- Logs: tqdm bar, ``OUT/metrics.jsonl``, TensorBoard events in ``OUT/tensorboard``; at the end
  the model is exported to ``OUT/export`` in the Google BERT layout.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

from tqdm import tqdm

from wobert import records
from wobert.backend import adamw, keras, learning_rate_at, set_seed, tf
from wobert.cli import UserError
from wobert.jsonfile import read_json, write_json
from wobert.layouts import config_file
from wobert.model import (
    ARCHITECTURE, DROPOUT, MLMModel, Vocabulary, build_mlm_model, check_bert_config,
    export_bert, init_config, init_from_bert, mlm_loss, read_vocabulary, replace_dir,
)
from wobert.optimization import GradientAccumulator

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

    def __post_init__(self) -> None:
        for name in ("batch_size", "accumulate", "steps", "checkpoint_every", "keep_checkpoints",
                     "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"pretrain config: {name} must be a positive integer, not {value!r}")
        if self.warmup_steps < 0 or self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("pretrain config: warmup_steps and weight_decay must be >= 0, "
                             "learning_rate > 0")
        unknown = set(self.model) - set(ARCHITECTURE + DROPOUT + ("hidden_act", "initializer_range"))
        if unknown:
            raise ValueError(f"pretrain config: unknown model key(s) {', '.join(sorted(unknown))}")


def load_config(path: str | os.PathLike, **overrides: Any) -> PretrainConfig:
    """Read a config JSON; ``overrides`` that are not None replace its values."""
    path = Path(path)
    values = read_json(path, "pretrain config")
    known = {f.name for f in fields(PretrainConfig)}
    unknown = sorted(set(values) - known - {"description"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values.pop("description", None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return PretrainConfig(**values)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


class DataSource(Protocol):
    """Pretraining batches (the dicts of ``wobert.records.make_dataset``) and their manifest."""

    manifest: Mapping[str, Any]

    def dataset(self, batch_size: int, *, seed: int, shuffle: bool, skip_batches: int,
                input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        """Endless batches of ``batch_size``; the stream is a function of ``seed`` (and the
        input pipeline) only, and starts after ``skip_batches`` of them."""


class Records:
    """TFRecord shards written by ``wobert data`` (issue 5's reader, repeated forever)."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data directory not found: {self.data_dir}")
        self.manifest = records.read_manifest(self.data_dir)
        if not self.manifest.get("complete"):
            raise UserError(f"{self.data_dir}: the records are incomplete; re-run `wobert data build`")
        if not sum(int(s.get("sequences", 0)) for s in self.manifest.get("shards", [])):
            raise UserError(f"{self.data_dir}: the records hold no sequences (empty corpus?)")

    def dataset(self, batch_size: int, *, seed: int, shuffle: bool, skip_batches: int,
                input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        return records.make_dataset(self.data_dir, batch_size, shuffle=shuffle, seed=seed,
                                    repeat=True, input_context=input_context,
                                    skip_batches=skip_batches)


def check_data(manifest: Mapping[str, Any], vocab: Vocabulary) -> None:
    """The records must have been built with this vocabulary."""
    size, sha = manifest.get("vocab_size"), manifest.get("vocab_sha256")
    if size is not None and size != vocab.size:
        raise UserError(f"the data (manifest.json) was built with a vocab of {size} tokens, "
                        f"but {vocab.vocab_file} has {vocab.size}")
    if sha is not None and sha != vocab.sha256:
        raise UserError(f"the data (manifest.json) was built with another vocab.txt than "
                        f"{vocab.vocab_file} (sha256 {sha[:12]}... vs {vocab.sha256[:12]}...)")


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


# ---------------------------------------------------------------------------------------
# The compiled training steps
# ---------------------------------------------------------------------------------------


def segment_seed(seed: int, step: int) -> int:
    """TF seed for the random ops (dropout) from ``step`` on: a function of (seed, step) only."""
    return (seed * 1_000_003 + step) % (2**31 - 1)


class Trainer:
    """Model, AdamW and gradient accumulator under a strategy, and the compiled steps.

    ``micro_step(iterator)`` runs forward/backward on one global micro-batch and returns the
    summed ``[loss, correct, masked, tokens]`` over replicas; ``apply_step()`` takes the
    optimizer step and returns the gradient norm. ``mixed_precision`` sets the global Keras
    policy to mixed_float16 (the MLM head stays float32).
    """

    def __init__(self, build: Callable[[], MLMModel], config: PretrainConfig,
                 strategy: tf.distribute.Strategy | None = None, mixed_precision: bool = False) -> None:
        self.strategy = strategy or tf.distribute.get_strategy()
        self.mixed_precision = mixed_precision
        if mixed_precision:  # stays set: bert4keras creates attention dropout layers when traced
            keras.mixed_precision.set_global_policy("mixed_float16")
        with self.strategy.scope():
            self.mlm = build()
            self.variables = self.mlm.model.trainable_variables
            self.adamw = adamw(config.learning_rate, config.weight_decay, config.warmup_steps,
                               config.steps)
            self.adamw._create_all_weights(self.variables)  # slots now, not inside a tf.function
            self.optimizer = (keras.mixed_precision.LossScaleOptimizer(self.adamw)
                              if mixed_precision else self.adamw)
            self.accumulator = GradientAccumulator(self.variables, config.clipnorm)
        self.checkpoint = tf.train.Checkpoint(model=self.mlm.transformer.model,
                                              optimizer=self.optimizer)
        self.apply_step = tf.function(self._apply_step)
        self.reseed(config.seed)

    def reseed(self, seed: int) -> None:
        """Trace the forward/backward step afresh with TF seed ``seed``: its dropout draws
        restart a stream that depends on ``seed`` only."""
        tf.random.set_seed(seed)
        self.micro_step = tf.function(self._micro_step)

    def _micro_step(self, iterator: Iterator) -> tf.Tensor:
        totals = self.strategy.run(self._replica_micro_step, (next(iterator),))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, totals, axis=None)

    def _replica_micro_step(self, batch: Mapping[str, tf.Tensor]) -> tf.Tensor:
        inputs = [batch["token_ids"], batch["segment_ids"], batch["masked_positions"]]
        with tf.GradientTape() as tape:
            logits = self.mlm.model(inputs, training=True)
            loss, correct, weight = mlm_loss(logits, batch["masked_ids"], batch["masked_weights"])
            if self.mixed_precision:  # scale the mean: float16 gradients then fit any batch size
                scaled = self.optimizer.get_scaled_loss(loss / tf.maximum(weight, 1.0))
        if self.mixed_precision:
            grads = self.optimizer.get_unscaled_gradients(tape.gradient(scaled, self.variables))
            grads = [None if g is None else tf.convert_to_tensor(g) * tf.maximum(weight, 1.0)
                     for g in grads]
        else:
            grads = tape.gradient(loss, self.variables)
        self.accumulator.add(grads, weight)
        tokens = tf.reduce_sum(tf.cast(batch["token_ids"] != 0, tf.float32))
        return tf.stack([loss, correct, weight, tokens])

    def step(self, iterator: Iterator, accumulate: int = 1) -> tuple[Any, float]:
        """One optimizer step over ``accumulate`` micro-batches: (summed totals, grad norm)."""
        totals = self.micro_step(iterator)
        for _ in range(accumulate - 1):
            totals += self.micro_step(iterator)
        norm = self.apply_step()
        return totals.numpy(), float(norm)

    def _apply_step(self) -> tf.Tensor:
        norm = self.strategy.run(self.accumulator.apply, (self.optimizer,))
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None)

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return learning_rate_at(self.adamw, step)


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


class Checkpoints:
    """Training checkpoints ``DIR/step-NNNNNNNN/{ckpt.*, state.json}``, complete or absent.

    Each is written to ``DIR/.tmp-...`` and renamed when done, so a kill leaves either the
    previous set or the new one. Only the chief keeps them; other workers write theirs (as
    collective saving requires) to a scratch directory and delete it.
    """

    PATTERN = re.compile(r"step-(\d+)$")

    def __init__(self, directory: str | os.PathLike, keep: int, worker: int = 0) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.worker = worker

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir()
                 if self.PATTERN.match(p.name) and (p / "state.json").is_file()]
        return sorted(found, key=lambda p: int(self.PATTERN.match(p.name).group(1)))

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    @staticmethod
    def state(path: Path) -> dict[str, Any]:
        return read_json(path / "state.json", "checkpoint state")

    def save(self, checkpoint: tf.train.Checkpoint, state: Mapping[str, Any]) -> Path:
        name = f"step-{state['step']:08d}"
        scratch = f".tmp-{name}" if self.worker == 0 else f".worker-{self.worker}-{name}"
        tmp = self.directory / scratch
        shutil.rmtree(tmp, ignore_errors=True)
        checkpoint.write(str(tmp / "ckpt"))
        if self.worker:
            shutil.rmtree(tmp, ignore_errors=True)
            return self.directory / name
        write_json(tmp / "state.json", state)
        replace_dir(tmp, self.directory / name)
        for old in self.all()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return self.directory / name

    def restore(self, checkpoint: tf.train.Checkpoint, path: Path) -> None:
        checkpoint.read(str(path / "ckpt")).assert_existing_objects_matched()

    def clean(self) -> None:
        """Remove scratch directories left by a killed run."""
        if self.directory.is_dir():
            for p in self.directory.glob(".*-step-*"):
                shutil.rmtree(p, ignore_errors=True)


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
        self.steps = 0

    def add(self, totals: Any, norm: float, seconds: float) -> None:
        loss, correct, weight, tokens = (float(x) for x in totals)
        self.loss, self.correct = self.loss + loss, self.correct + correct
        self.weight, self.tokens = self.weight + weight, self.tokens + tokens
        self.norm, self.seconds, self.steps = self.norm + norm, self.seconds + seconds, self.steps + 1

    def flush(self, step: int, lr: float) -> dict[str, Any] | None:
        """Write the interval's averages as the record of ``step``; return it."""
        if not self.steps:
            return None
        record = {
            "step": step,
            "loss": self.loss / max(self.weight, 1.0),
            "accuracy": self.correct / max(self.weight, 1.0),
            "lr": lr,
            "grad_norm": self.norm / self.steps,
            "tokens_per_sec": self.tokens / max(self.seconds, 1e-9),
            "masked_tokens": self.weight,
        }
        self.reset()
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            with self.writer.as_default(step=step):
                for name in ("loss", "accuracy", "lr", "grad_norm", "tokens_per_sec"):
                    tf.summary.write(name, tf.constant(record[name], tf.float32),
                                     metadata=SCALAR)
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


def postfix(record: Mapping[str, Any]) -> dict[str, str]:
    return {"loss": f"{record['loss']:.3f}", "acc": f"{record['accuracy']:.3f}",
            "lr": f"{record['lr']:.2e}", "tok/s": f"{record['tokens_per_sec']:.0f}"}


# ---------------------------------------------------------------------------------------
# The training run
# ---------------------------------------------------------------------------------------


def model_config(config: PretrainConfig, vocab: Vocabulary, maxlen: int | None) -> dict[str, Any]:
    """The BERT config the run trains (from the init model when there is one), checked."""
    if config.init:
        model, _ = init_config(config.init, config.model)
        where = str(config_file(config.init))
    else:
        model, where = dict(config.model), "model config"
    return check_bert_config({**model, "vocab_size": vocab.size}, maxlen=maxlen, where=where)


def build_model(config: PretrainConfig, vocab: Vocabulary, model: dict[str, Any],
                from_init: bool) -> MLMModel:
    if from_init and config.init:
        return init_from_bert(config.init, vocab, {k: model[k] for k in DROPOUT if k in model})
    return build_mlm_model(model)


def check_resume(state: Mapping[str, Any], model: Mapping[str, Any], vocab: Vocabulary,
                 config: PretrainConfig, replicas: int, path: Path) -> None:
    """Refuse a checkpoint of another vocabulary or architecture; warn on a changed stream."""
    if state["vocab_sha256"] != vocab.sha256:
        raise UserError(f"checkpoint {path} was trained with another vocab.txt than {vocab.vocab_file}")
    changed = [k for k in ARCHITECTURE + ("vocab_size",) if state["model"].get(k) != model.get(k)]
    if changed:
        raise UserError(f"checkpoint {path} has another architecture: " + ", ".join(
            f"{k} {state['model'].get(k)} vs {model.get(k)}" for k in changed))
    stream = {"batch_size": config.batch_size, "replicas": replicas, "seed": config.seed,
              "shuffle": config.shuffle}
    differ = [k for k, v in stream.items() if state.get(k) != v]
    if differ:
        log.warning("resuming with another %s than checkpoint %s: the data stream continues "
                    "from about the same position, not exactly", "/".join(differ), path)


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

    Everything the user can get wrong is checked before the model is built.
    """
    out_dir = Path(out_dir)
    strategy = strategy or pick_strategy()
    worker, replicas = worker_id(strategy), strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UserError(f"batch_size {config.batch_size} is not divisible by the {replicas} replicas")
    check_data(data.manifest, vocab)
    model = model_config(config, vocab, data.manifest.get("maxlen"))
    checkpoints = Checkpoints(out_dir / "checkpoints", config.keep_checkpoints, worker)
    latest = checkpoints.latest()
    if latest and not resume:
        raise UserError(f"{out_dir} already holds checkpoints (latest {latest.name}): "
                        "pass --resume to continue, or choose another --out")
    state = {"step": 0, "data_position": 0}
    if latest:
        state = Checkpoints.state(latest)
        check_resume(state, model, vocab, config, replicas, latest)
        model = state["model"]
    if worker == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.clean()
        run_config = {**asdict(config), "model": model, "vocab": str(vocab.directory)}
        write_json(out_dir / "run_config.json", run_config)
    if config.deterministic:
        set_seed(config.seed)
    else:
        keras.utils.set_random_seed(config.seed)
    trainer = Trainer(lambda: build_model(config, vocab, model, from_init=latest is None),
                      config, strategy, mixed_precision)
    if latest:
        checkpoints.restore(trainer.checkpoint, latest)
        log.info("resuming from %s", latest)
    state.update(model=model, vocab_sha256=vocab.sha256, batch_size=config.batch_size,
                 accumulate=config.accumulate, replicas=replicas, seed=config.seed,
                 shuffle=config.shuffle)
    record = run_steps(trainer, data, config, state, checkpoints, Metrics(out_dir, state["step"], worker == 0))
    export = export_bert(trainer.mlm, out_dir / "export", vocab) if worker == 0 else None
    return {"step": state["step"], "last": record, "export": str(export) if export else None}


def run_steps(trainer: Trainer, data: DataSource, config: PretrainConfig, state: dict[str, Any],
              checkpoints: Checkpoints, metrics: Metrics) -> dict[str, Any] | None:
    """Train from ``state`` (step, data position) to ``config.steps``, logging and saving
    checkpoints on the way; ``state`` is updated. Returns the last metrics record."""
    strategy = trainer.strategy
    position = state["data_position"]

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return data.dataset(
            ctx.get_per_replica_batch_size(config.batch_size), seed=config.seed,
            shuffle=config.shuffle, input_context=ctx,
            skip_batches=position * (ctx.num_replicas_in_sync // ctx.num_input_pipelines))

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
    trainer.reseed(segment_seed(config.seed, state["step"]))
    record = None
    with tqdm(total=config.steps, initial=state["step"], desc="pretrain", unit="step",
              disable=True if checkpoints.worker else None, dynamic_ncols=True) as bar:
        while state["step"] < config.steps:
            start = time.perf_counter()
            totals, norm = trainer.step(iterator, config.accumulate)
            metrics.add(totals, norm, time.perf_counter() - start)
            step = state["step"] = state["step"] + 1
            state["data_position"] += config.accumulate
            bar.update(1)
            boundary = step % config.checkpoint_every == 0 or step == config.steps
            if boundary or step % config.log_every == 0:
                record = metrics.flush(step, trainer.learning_rate(step - 1)) or record
                bar.set_postfix(postfix(record))
            if boundary:
                state["sequences_seen"] = state["data_position"] * config.batch_size
                checkpoints.save(trainer.checkpoint, state)
                if step < config.steps:
                    trainer.reseed(segment_seed(config.seed, step))
    return record


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def resolve_vocab(explicit: str | None, config: PretrainConfig, data_dir: Path,
                  manifest: Mapping[str, Any]) -> Vocabulary:
    """--vocab, else the config's ``vocab``, else the copy the records keep in DATA/vocab."""
    copy = data_dir / records.VOCAB_SUBDIR
    path = explicit or config.vocab or (copy if copy.is_dir() else manifest.get("vocab_dir"))
    if not path:
        raise UserError(f"which vocabulary? {data_dir} has no {records.VOCAB_SUBDIR}/: pass --vocab DIR")
    return read_vocabulary(path)


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "MLM pretraining on TFRecord shards from `wobert data`: from scratch, from a BERT "
        "directory (--init; a char model for a word vocabulary: new words start as the mean of "
        "their characters), or resumed (--resume). Writes OUT/checkpoints/, OUT/metrics.jsonl, "
        "OUT/tensorboard/ and finally OUT/export/ (bert_config.json, vocab.txt, bert_model.ckpt). "
        "With TF_CONFIG set it trains across workers (MultiWorkerMirroredStrategy)."
    )
    parser.add_argument("config", help="pretraining config JSON (e.g. pretrain/tiny.json)")
    parser.add_argument("--data", required=True, help="directory with manifest.json and shard-*.tfrecord")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--vocab", help="vocabulary directory (default: the config's, else DATA/vocab, "
                        "the copy the records keep)")
    parser.add_argument("--init", help="BERT directory to initialise from, Google or Hugging Face layout "
                        "(overrides the config's)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in OUT (start afresh if there is none)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="float16 compute on GPU (ignored with a warning on CPU)")
    g = parser.add_argument_group("overrides of the config")
    g.add_argument("--steps", type=int, help="optimizer steps in total")
    g.add_argument("--batch-size", type=int, help="sequences per micro-batch over all replicas")
    g.add_argument("--accumulate", type=int, help="micro-batches per optimizer step")
    g.add_argument("--learning-rate", type=float, help="peak learning rate")
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--checkpoint-every", type=int, metavar="STEPS")
    g.add_argument("--keep-checkpoints", type=int, metavar="K")
    g.add_argument("--log-every", type=int, metavar="STEPS")


def run_cli(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in (
        "init", "steps", "batch_size", "accumulate", "learning_rate", "warmup_steps", "seed",
        "checkpoint_every", "keep_checkpoints", "log_every")}
    config = load_config(args.config, **overrides)
    data = Records(args.data)
    vocab = resolve_vocab(args.vocab, config, Path(args.data), data.manifest)
    mixed = args.mixed_precision
    if mixed and not tf.config.list_logical_devices("GPU"):
        log.warning("--mixed-precision needs a GPU; training in float32 on CPU")
        mixed = False
    result = train(config, data, args.out, vocab, resume=args.resume, mixed_precision=mixed)
    last = result["last"]
    if result["export"]:
        loss = f", last loss {last['loss']:.4f}, accuracy {last['accuracy']:.4f}" if last else ""
        print(f"step {result['step']}{loss} -> {result['export']}")
    return 0
