"""The ``wobert`` command line: one subcommand per pipeline stage.

Each command module defines ``add_cli(parser)`` (its options) and ``run_cli(args) -> int``;
only the module of the chosen subcommand is imported. The stages that need TensorFlow keep
their command line in ``wobert.commands`` and import the library inside ``run_cli``, so
``--help`` and a bad option answer at once, without TensorFlow.

Errors: a :class:`~wobert.errors.UserError` or an ``OSError`` (a missing file, a full disk)
is printed as one line (exit status 2); Ctrl-C prints one line (130); a closed output pipe
(``wobert tokenize ... | head``) ends quietly (141, as SIGPIPE would). Anything else is a
programming error and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from wobert import __version__
from wobert.errors import UserError

__all__ = ["COMMANDS", "UserError", "main", "run_guarded"]

COMMANDS = {
    "tokenize": ("wobert.tokenizer", "tokenize text into word-level (or char-level) tokens or ids"),
    "vocab": ("wobert.vocab", "build a word vocabulary on a character base (WoBERT's recipe)"),
    "data": ("wobert.records", "turn corpora into masked TFRecord shards for pretraining, verify them"),
    "pretrain": ("wobert.commands.pretrain", "MLM pretraining, resume, export to the BERT layout"),
    "finetune": ("wobert.commands.finetune", "finetune a pretrained model on a CLUE task or your JSONL"),
    "compare": ("wobert.commands.compare", "compare a word model with a char model on tasks"),
    "export": ("wobert.commands.export", "export a model for transformers (Hugging Face) or ONNX Runtime"),
    "demo": ("wobert.demo", "the whole pipeline on the embedded default data"),
}
INTERRUPTED = 130
BROKEN_PIPE = 141


class Parser(argparse.ArgumentParser):
    """argparse with a bad option reported in one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _top_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wobert",
        description="Chinese word-level BERT: tokenizer, vocabulary, pretraining, finetuning.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {k:<10} {v[1]}" for k, v in COMMANDS.items())
        + "\n\nRun `wobert COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"wobert {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    return parser


def describe(err: BaseException) -> str:
    """An error as its line: an operating system's error as ``FILE: reason`` (no errno)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def run_guarded(name: str, run: Callable[[], int | None]) -> int:
    """``run()``'s exit status, with the user's errors as one line on stderr (see above)."""
    try:
        return int(run() or 0)
    except BrokenPipeError:
        # stdout's reader is gone: send what is still buffered nowhere, so that Python's
        # final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except (UserError, OSError) as err:
        print(f"wobert {name}: error: {describe(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wobert {name}: interrupted", file=sys.stderr)
        return INTERRUPTED


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
    parser = Parser(prog=f"wobert {name}", description=COMMANDS[name][1])
    module.add_cli(parser)
    args = parser.parse_args(argv[1:])
    return run_guarded(name, lambda: module.run_cli(args))
