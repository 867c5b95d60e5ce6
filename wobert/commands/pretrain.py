"""``wobert pretrain``: options here, the training in :mod:`wobert.pretrain` (TensorFlow)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wobert.checks import NON_NEGATIVE, POSITIVE, number, output_dir

log = logging.getLogger("wobert.pretrain")

OVERRIDES = ("init", "steps", "batch_size", "accumulate", "learning_rate", "warmup_steps", "seed",
             "checkpoint_every", "keep_checkpoints", "log_every", "max_bad_steps", "jit_compile")


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
    parser.add_argument("--out", required=True, type=output_dir, help="run directory")
    parser.add_argument("--vocab", help="vocabulary directory (default: the config's, else DATA/vocab, "
                        "the copy the records keep)")
    parser.add_argument("--init", help="BERT directory to initialise from, Google or Hugging Face layout "
                        "(overrides the config's)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint in OUT (start afresh if "
                        "there is none); a damaged one is skipped, saying so")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="float16 compute on GPU (ignored with a warning on CPU)")
    g = parser.add_argument_group("overrides of the config")
    g.add_argument("--steps", type=POSITIVE, help="optimizer steps in total")
    g.add_argument("--batch-size", type=POSITIVE, help="sequences per micro-batch over all replicas")
    g.add_argument("--accumulate", type=POSITIVE, help="micro-batches per optimizer step")
    g.add_argument("--learning-rate", type=number(float, 0, above=True), help="peak learning rate")
    g.add_argument("--warmup-steps", type=NON_NEGATIVE)
    g.add_argument("--seed", type=NON_NEGATIVE)
    g.add_argument("--checkpoint-every", type=POSITIVE, metavar="STEPS")
    g.add_argument("--keep-checkpoints", type=POSITIVE, metavar="K")
    g.add_argument("--log-every", type=POSITIVE, metavar="STEPS")
    g.add_argument("--max-bad-steps", type=POSITIVE, metavar="K",
                   help="stop after K steps in a row with a non-finite loss or gradient norm "
                   "(each is skipped, not applied)")
    g.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the whole training step with XLA (one replica per process; "
                   "default: the config's, else off: not faster on CPU, see the README)")


def run_cli(args: argparse.Namespace) -> int:
    from wobert.backend import tf
    from wobert.pretrain import Records, load_config, resolve_vocab, train

    config = load_config(args.config, **{k: getattr(args, k) for k in OVERRIDES})
    data = Records(args.data)
    vocab = resolve_vocab(args.vocab, config, Path(args.data), data.manifest)
    mixed = args.mixed_precision
    if mixed and not tf.config.list_logical_devices("GPU"):
        log.warning("--mixed-precision needs a GPU; training in float32 on CPU")
        mixed = False
    result = train(config, data, args.out, vocab, resume=args.resume, mixed_precision=mixed)
    last = result["last"]
    if result["export"]:
        loss = f", last loss {last['loss']:.4f}, accuracy {last['accuracy']:.4f}" \
            if last and last.get("loss") is not None else ""
        print(f"step {result['step']}{loss} -> {result['export']}")
    return 0
