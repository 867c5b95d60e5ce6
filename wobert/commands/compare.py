"""``wobert compare``: options here, the runs in :mod:`wobert.compare` (TensorFlow)."""
from __future__ import annotations

import argparse

from wobert.checks import output_dir
from wobert.commands.finetune import add_config_options, config_from_args
from wobert.errors import UserError
from wobert.tasks import TASKS


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Finetune a char model and a word model of the same architecture with the same seeds "
        "and budgets on CLUE tasks; write comparison.md, comparison.json and comparison.png."
    )
    parser.add_argument("--char-model", required=True, help="char-level model directory")
    parser.add_argument("--word-model", required=True, help="word-level model directory")
    parser.add_argument("--data", required=True, help="data root holding clue/<task>/")
    parser.add_argument("--out", required=True, type=output_dir, help="output directory")
    parser.add_argument("--tasks", default="tnews,ocnli",
                        help=f"comma-separated, from {', '.join(TASKS)} (default %(default)s)")
    parser.add_argument("--seeds", type=_int_list, default=[1, 2, 3],
                        help="comma-separated seeds (default 1,2,3)")
    parser.add_argument("--predict-test", action="store_true", help="also predict each test file")
    add_config_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise UserError(f"unknown task(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(TASKS)}")
    if not args.seeds:
        raise UserError("--seeds needs at least one seed")
    for option, values in (("--tasks", tasks), ("--seeds", args.seeds)):
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise UserError(f"{option} repeats {', '.join(repeated)}: each run would be the same")
    config = config_from_args(args, predict_test=args.predict_test)
    from wobert.compare import compare, markdown

    report = compare(args.char_model, args.word_model, tasks, args.seeds, args.data, config, args.out)
    print(markdown(report))
    print(f"written: {args.out}/comparison.md, comparison.json, comparison.png")
    return 0
