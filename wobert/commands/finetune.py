"""``wobert finetune`` (and ``finetune/run.py TASK``): options here, the training in
:mod:`wobert.finetune` (TensorFlow). A named task trains with its defaults
(``TaskSpec.defaults``); an option given overrides them."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, fields, replace
from typing import Any

from wobert.checks import NON_NEGATIVE, POSITIVE, number, output_dir
from wobert.config import given, load_job
from wobert.errors import UserError
from wobert.finetune_config import SPARSE_MODES, FinetuneConfig
from wobert.tasks import TASKS, TaskData, TaskSpec, load_task

# The options whose default differs from task to task (lr, epochs, batch_size, maxlen).
PER_TASK = tuple(f.name for f in fields(FinetuneConfig)
                 if any(getattr(spec.defaults, f.name) != f.default for spec in TASKS.values()))


def _defaults(per_task: bool) -> Any:
    """``default(name, what)``: the argparse default and help of option ``name`` (``what`` it
    is); with ``per_task``, one of ``PER_TASK`` defaults to None and its help lists each task's."""
    def default(name: str, what: str = "") -> dict[str, Any]:
        if per_task and name in PER_TASK:
            tasks = ", ".join(f"{task} {getattr(spec.defaults, name)}" for task, spec in TASKS.items())
            value, shown = None, f"default: per task, {tasks}; custom {getattr(FinetuneConfig, name)}"
        else:
            value, shown = getattr(FinetuneConfig, name), "default %(default)s"
        return {"default": value, "help": f"{what} ({shown})" if what else shown}
    return default


def add_config_options(parser: argparse.ArgumentParser, per_task: bool = False) -> None:
    """Options shared by ``wobert finetune`` and ``wobert compare`` (hyper-parameters, budgets).
    With ``per_task`` (finetune), the options in ``PER_TASK`` default to the task's."""
    d, default = FinetuneConfig(), _defaults(per_task)
    share = number(float, 0, 1)
    g = parser.add_argument_group("training")
    g.add_argument("--lr", type=number(float, 0), **default("lr", "peak learning rate"))
    g.add_argument("--epochs", type=POSITIVE, **default("epochs"))
    g.add_argument("--batch-size", type=POSITIVE, **default("batch_size", "training batch"))
    g.add_argument("--eval-batch-size", type=POSITIVE, default=d.eval_batch_size,
                   help="dev/test batch; inference speed is measured with it (default %(default)s)")
    g.add_argument("--maxlen", type=number(int, 2), **default(
        "maxlen", "tokens per example incl. [CLS]/[SEP]; longer ones are truncated"))
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
    g.add_argument("--sparse-adam", choices=SPARSE_MODES, default=d.sparse_adam,
                   help="how the embedding tables update: catch-up: only the rows a batch uses, each first "
                   "moved as dense AdamW would have moved it over the steps it missed (dense AdamW's values, "
                   "a sparse step's cost); lazy: only the rows a batch uses, their moments and weight decay "
                   "advancing only then (TF's LazyAdam); dense: every row every step (default: %(default)s)")
    g.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=d.jit_compile,
                   help="compile the forward and backward passes with XLA, once per batch shape "
                   "(default: off; slower on CPU, see the README)")
    g.add_argument("--max-train", type=POSITIVE, default=None, metavar="N",
                   help="train on the first N examples only (quick runs; default: all)")
    g.add_argument("--max-dev", type=POSITIVE, default=None, metavar="N",
                   help="evaluate on the first N dev examples only (default: all)")


def config_from_args(args: argparse.Namespace, base: FinetuneConfig | None = None,
                     **overrides: Any) -> FinetuneConfig:
    """``base`` (a task's defaults; default: FinetuneConfig's) with the parsed options that are
    not None, then ``overrides``, on top (fields absent from ``args`` keep ``base``'s)."""
    return load_job(FinetuneConfig, what="finetune", base=asdict(base or FinetuneConfig()),
                    overrides={**given(args, FinetuneConfig), **overrides})


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
    parser.add_argument("--labels", help="labels.json fixing the label set (default: the task's labels.json "
                        "or label list, else the labels of the training file)")
    parser.add_argument("--text-field", help="field of the text (custom default: text)")
    parser.add_argument("--pair-field", help="field of the second text of a pair task")
    parser.add_argument("--label-field", help="field of the label (default: label)")
    parser.add_argument("--id-field", help="field of the example id in test files (default: id)")
    parser.add_argument("--seed", type=int, default=FinetuneConfig.seed, help="default %(default)s")
    parser.add_argument("--no-test", action="store_true", help="do not predict the test file")
    parser.add_argument("--save-model", action="store_true",
                        help="write the best model to OUT/model/ (BERT, classifier and labels), "
                             "which `wobert export` turns into a Hugging Face or ONNX model")
    add_config_options(parser, per_task=True)


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
    if data.train is None:
        raise UserError(f"task {spec.name} has no training file in {args.data} (looked for "
                        f"{', '.join(spec.train)}): give --train FILE")
    for name in ("train", "dev", "test"):
        split = getattr(data, name)
        for reason, count in (split.skipped.items() if split else ()):
            print(f"{split.path}: skipped {count} rows ({reason})", file=sys.stderr)
    return data


def run_cli(args: argparse.Namespace) -> int:
    from wobert.finetune import encode_task, finetune, load_pretrained

    spec = task_spec_from_args(args)
    config = config_from_args(args, spec.defaults, predict_test=not args.no_test)
    model = load_pretrained(args.model)
    data = load_task_from_args(args, spec)
    encoded = encode_task(model.tokenizer, data, config)
    result = finetune(model, data, encoded, config, args.out)
    print(f"{spec.name} ({model.kind} model): dev accuracy {result['dev_accuracy']:.4f}, "
          f"macro-F1 {result['dev_macro_f1']:.4f} (majority baseline "
          f"{result['majority_baseline']:.4f}); "
          f"{result['tokens_per_example']['dev']:.1f} tokens/example; "
          f"train {result['train_examples_per_s'] or 0:.1f} ex/s, "
          f"inference {result['inference_examples_per_s']:.1f} ex/s -> {args.out}/result.json")
    return 0

