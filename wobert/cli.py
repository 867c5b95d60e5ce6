"""The ``wobert`` command line: one subcommand per pipeline stage.

Each stage module defines ``add_cli(parser)`` (its options) and ``run_cli(args) -> int``;
only the module of the chosen subcommand is imported, so ``wobert tokenize`` starts fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from wobert import __version__

COMMANDS = {
    "tokenize": ("wobert.tokenizer", "tokenize text into word-level (or char-level) tokens or ids"),
    "vocab": ("wobert.vocab", "build a word vocabulary on a character base (WoBERT's recipe)"),
    "data": ("wobert.records", "turn corpora into masked TFRecord shards for pretraining"),
    "pretrain": ("wobert.pretrain", "MLM pretraining, resume, export to the BERT layout"),
    "finetune": ("wobert.finetune", "finetune a pretrained model on a CLUE task or your JSONL"),
    "compare": ("wobert.compare", "compare a word model with a char model on tasks"),
    "export": ("wobert.export", "export a model for transformers (Hugging Face) or ONNX Runtime"),
    "demo": ("wobert.demo", "the whole pipeline on the embedded default data"),
}


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wobert",
        description="Chinese word-level BERT: tokenizer, vocabulary, pretraining, finetuning.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {k:<10} {v[1]}" for k, v in COMMANDS.items())
        + "\n\nRun `wobert COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"wobert {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wobert`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv or ["--help"])
        return 0
    top.parse_args(argv[:1])
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"wobert {name}", description=COMMANDS[name][1])
    module.add_cli(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run_cli(args) or 0)
    except (UserError, FileNotFoundError, ValueError, TypeError) as err:
        print(f"wobert {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wobert {name}: interrupted", file=sys.stderr)
        return 130
