"""``wobert finetune`` and the ``finetune/<task>.py`` scripts: options here, the training in
:mod:`wobert.finetune` (TensorFlow)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace
from typing import Any, Sequence

from wobert.checks import NON_NEGATIVE, POSITIVE, number, output_dir
from wobert.errors import UserError
from wobert.finetune_config import FinetuneConfig
from wobert.tasks import TASKS, TaskData, TaskSpec, load_task


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``wobert finetune`` and ``wobert compare`` (hyper-parameters, budgets)."""
    d = FinetuneConfig()
    share = number(float, 0, 1)
    g = parser.add_argument_group("training")
    g.add_argument("--lr", type=number(float, 0), default=d.lr, help="peak learning rate (default %(default)s)")
    g.add_argument("--epochs", type=POSITIVE, default=d.epochs, help="default %(default)s")
    g.add_argument("--batch-size", type=POSITIVE, default=d.batch_size, help="training batch (default %(default)s)")
    g.add_argument("--eval-batch-size", type=POSITIVE, default=d.eval_batch_size,
                   help="dev/test batch; inference speed is measured with it (default %(default)s)")
    g.add_argument("--maxlen", type=number(int, 2), default=d.maxlen,
                   help="tokens per example incl. [CLS]/[SEP]; longer ones are truncated (default %(default)s)")
    g.add_argument("--pooling", choices=("pool", "cls"), default=d.pooling,
                   help="classify BERT's pooled output or the raw [CLS] vector (default %(default)s)")
    g.add_argument("--dropout", type=number(float, 0, 1, below=True), default=d.dropout,
                   help="default %(default)s")
    g.add_argument("--weight-decay", type=number(float, 0), default=d.weight_decay, help="default %(default)s")
    g.add_argument("--warmup", type=share, default=d.warmup,
                   help="share of steps with linear warm-up (default %(default)s)")
    g.add_argument("--patience", type=POSITIVE, default=d.patience,
                   help="stop after this many dev evaluations without improvement (default %(default)s)")
    g.add_argument("--eval-every", type=NON_NEGATIVE, default=d.eval_every, metavar="STEPS",
                   help="evaluate on dev every STEPS steps (default: once per epoch)")
    g.add_argument("--lazy-adam", action=argparse.BooleanOptionalAction, default=d.lazy_adam,
                   help="update only the rows of the token embedding a batch uses, their moments "
                   "and weight decay included (lazy Adam, as TF's LazyAdam); --no-lazy-adam: dense "
                   "AdamW over the whole table every step (default: lazy)")
    g.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=d.jit_compile,
                   help="compile the forward and backward passes with XLA, once per batch shape "
                   "(default: off; slower on CPU, see the README)")
    g.add_argument("--max-train", type=POSITIVE, default=None, metavar="N",
                   help="train on the first N examples only (quick runs; default: all)")
    g.add_argument("--max-dev", type=POSITIVE, default=None, metavar="N",
                   help="evaluate on the first N dev examples only (default: all)")


def config_from_args(args: argparse.Namespace, **overrides: Any) -> FinetuneConfig:
    """A FinetuneConfig from parsed options (fields absent from ``args`` keep their defaults)."""
    names = {f.name for f in fields(FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return FinetuneConfig(**{**values, **overrides})


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Finetune a pretrained model (a `wobert pretrain` export, any Google-format BERT "
        "checkpoint directory or a Hugging Face BERT directory) on a CLUE task or on your own "
        "JSONL/TSV files. Writes "
        "result.json (dev accuracy, macro-F1, examples/s, tokens per example) and "
        "<task>_predict.json for an unlabelled test file."
    )
    parser.add_argument("--model", required=True,
                        help="model directory: Google layout (bert_config.json, vocab.txt, bert_model.ckpt) "
                             "or Hugging Face (config.json, vocab.txt, model.safetensors)")
    parser.add_argument("--out", required=True, type=output_dir, help="output directory")
    parser.add_argument("--task", default="custom",
                        help=f"{', '.join(TASKS)} or custom (your files, named by --train/--dev/--test "
                             "and the field options); default %(default)s")
    parser.add_argument("--data", help="data root holding clue/<task>/ (or the task directory itself)")
    parser.add_argument("--train", help="training file (.json/.jsonl lines or .tsv with a header)")
    parser.add_argument("--dev", help="dev file (default: the task's dev.json; without one, 10%% of train)")
    parser.add_argument("--test", help="test file to predict")
    parser.add_argument("--labels", help="labels.json fixing the label set (default: the task's)")
    parser.add_argument("--text-field", help="field of the text (custom default: text)")
    parser.add_argument("--pair-field", help="field of the second text of a pair task")
    parser.add_argument("--label-field", help="field of the label (default: label)")
    parser.add_argument("--id-field", help="field of the example id in test files (default: id)")
    parser.add_argument("--seed", type=int, default=FinetuneConfig.seed, help="default %(default)s")
    parser.add_argument("--no-test", action="store_true", help="do not predict the test file")
    parser.add_argument("--save-model", action="store_true",
                        help="write the best model to OUT/model/ (BERT, classifier and labels), "
                             "which `wobert export` turns into a Hugging Face or ONNX model")
    add_config_options(parser)


def task_spec_from_args(args: argparse.Namespace) -> TaskSpec:
    """The named CLUE task, or a custom one, with any field names overridden."""
    if args.task == "custom":
        if not args.train:
            raise UserError("a custom task needs --train FILE (or --task one of " + ", ".join(TASKS) + ")")
        spec = TaskSpec("custom", "text")
    elif args.task in TASKS:
        spec = TASKS[args.task]
    else:
        raise UserError(f"unknown task {args.task!r}: choose one of {', '.join(TASKS)} or custom")
    changes = {k: getattr(args, k) for k in ("text_field", "pair_field", "label_field", "id_field")
               if getattr(args, k)}
    return replace(spec, **changes)


def load_task_from_args(args: argparse.Namespace, spec: TaskSpec) -> TaskData:
    if args.data is None and not args.train:
        raise UserError("give --data DIR (holding clue/<task>/) or --train FILE")
    data = load_task(spec, args.data, train=args.train, dev=args.dev, test=args.test,
                     labels=args.labels)
    for name in ("train", "dev", "test"):
        split = getattr(data, name)
        for reason, count in (split.skipped.items() if split else ()):
            print(f"{split.path}: skipped {count} rows ({reason})", file=sys.stderr)
    return data


def run_cli(args: argparse.Namespace) -> int:
    from wobert.finetune import encode_task, finetune, load_pretrained

    spec = task_spec_from_args(args)
    config = config_from_args(args, predict_test=not args.no_test)
    model = load_pretrained(args.model)
    data = load_task_from_args(args, spec)
    encoded = encode_task(model.tokenizer, data, config)
    result = finetune(model, data, encoded, config, args.out)
    print(f"{spec.name} ({model.kind} model): dev accuracy {result['dev_accuracy']:.4f}, "
          f"macro-F1 {result['dev_macro_f1']:.4f} (majority baseline "
          f"{result['majority_baseline'] or float('nan'):.4f}); "
          f"{result['tokens_per_example']['dev']:.1f} tokens/example; "
          f"train {result['train_examples_per_s'] or 0:.1f} ex/s, "
          f"inference {result['inference_examples_per_s']:.1f} ex/s -> {args.out}/result.json")
    return 0


def task_script(task: str, argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """Entry of ``finetune/<task>.py``: ``wobert finetune --task TASK`` with the task's defaults
    (e.g. ``maxlen=64``) placed before the user's options, which override them."""
    from wobert.cli import main

    argv = list(sys.argv[1:] if argv is None else argv)
    preset = [f"--{k.replace('_', '-')}={v}" for k, v in defaults.items()]
    return main(["finetune", "--task", task, *preset, *argv])
