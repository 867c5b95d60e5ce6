"""Job configs, read one way (wobert.config): unknown keys refused naming the file and key,
types checked, paths resolved, command-line options on top; the shipped configs load as
before; each CLUE task's finetuning defaults live with the task and show in --help."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wobert.cli import Parser, main
from wobert.commands import compare as compare_command
from wobert.commands import finetune as finetune_command
from wobert.config import load_job
from wobert.errors import UserError
from wobert.finetune_config import FinetuneConfig
from wobert.records import DataOptions
from wobert.tasks import TASKS
from wobert.vocab import VocabSpec

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_unknown_keys_are_refused_naming_the_file_and_the_key(tmp_path):
    job = write(tmp_path / "job.json", {"num_words": 5, "min_cont": 2})
    with pytest.raises(UserError, match=r"job.json: unknown key\(s\) min_cont; known: base_vocab, "):
        VocabSpec.from_config(job)
    with pytest.raises(UserError, match=r"^data config: unknown key\(s\) max_len, x; known: corpus, "):
        DataOptions.from_config({"max_len": 9, "x": 1})
    write(job, ["not", "an", "object"])
    with pytest.raises(UserError, match="job.json: a data config is a JSON object, not list"):
        DataOptions.from_config(job)
    job.write_bytes(b'\xff\xfe{"num_words": 5}')
    with pytest.raises(UserError, match=r"job.json: not UTF-8 text \(byte 0\): a vocab config holds UTF-8 JSON"):
        VocabSpec.from_config(job)


def test_field_errors_name_the_file_and_wrong_types_are_user_errors(tmp_path):
    job = write(tmp_path / "job.json", {"corpus": ["c.txt"], "maxlen": "128"})
    with pytest.raises(UserError, match=r"^.*job.json: data options: maxlen must be an integer, not '128'$"):
        DataOptions.from_config(job, "root")
    # a path field of the wrong type is left alone for the type check (no TypeError)
    with pytest.raises(UserError, match="vocab options: corpus must be a list of strings, not 5"):
        VocabSpec.from_config({"corpus": 5, "base_vocab": "v.txt"}, "root")
    with pytest.raises(UserError, match="data options: corpus must be a list of strings, not"):
        DataOptions.from_config({"corpus": ["a", 3]}, "root")


def test_paths_start_from_the_root_and_options_go_on_top(tmp_path):
    job = write(tmp_path / "job.json", {"description": "a comment", "corpus": ["c", "/abs/d"],
                                        "user_words": "u.txt", "min_count": 3, "workers": 4})
    spec = VocabSpec.from_config(job, "ROOT", base={"workers": 9, "num_words": 7},
                                 min_count=None, num_words=None, workers=2)
    assert (spec.corpus, spec.user_words, spec.base_vocab) == (["ROOT/c", "/abs/d"], "ROOT/u.txt", None)
    # base < job < options given (None: not given)
    assert (spec.num_words, spec.min_count, spec.workers) == (7, 3, 2)
    # a string corpus is one path; options given are taken as they are
    options = DataOptions.from_config({"corpus": "c.txt"}, "ROOT", vocab="v")
    assert (options.corpus, options.vocab) == (["ROOT/c.txt"], "v")
    assert DataOptions.from_config({"corpus": ["c"]}, "ROOT", corpus=["mine"]).corpus == ["mine"]
    # without a root the paths stay as written
    assert load_job(VocabSpec, {"corpus": ["c"]}, what="vocab", paths=("corpus",)).corpus == ["c"]


def test_a_programming_error_is_not_a_user_error():
    with pytest.raises(TypeError):
        load_job(VocabSpec, {"corpus": ["c"]}, what="vocab", overrides={"no_such_field": 1})


def test_the_shipped_job_configs_load_as_before():
    assert VocabSpec.from_config(REPO / "vocab" / "wobert_jieba.json", "D") == VocabSpec(
        base_vocab="D/bert-base-chinese/vocab.txt", word_source="jieba", num_words=20000,
        eval=["D/clue/tnews/dev.json"], text_field="sentence")
    assert VocabSpec.from_config(REPO / "vocab" / "corpus.json", "D") == VocabSpec(
        base_vocab="D/bert-base-chinese/vocab.txt", word_source="corpus", num_words=20000,
        corpus=["D/corpus"], min_count=5)
    assert DataOptions.from_config(REPO / "pretrain" / "data.json", "D") == DataOptions(
        corpus=["D/corpus"], maxlen=128, masking="token", mask_rate=0.15, dynamic=False,
        dupe_factor=2, seed=12345, shard_chars=500000, workers=2)


@pytest.mark.parametrize("argv, blamed", [
    (["vocab", "build", "--config", "job.json", "--out", "o"], r"job.json: unknown key\(s\) stepz; known: "),
    (["data", "build", "--config", "job.json", "--out", "o"], r"job.json: unknown key\(s\) stepz; known: "),
    (["vocab", "build", "--config", "types.json", "--out", "o"],
     "types.json: vocab options: min_count must be an integer, not '5'"),
])
def test_config_errors_on_the_command_line_are_one_line(tmp_path, monkeypatch, capsys, argv, blamed):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "job.json", {"corpus": ["c"], "stepz": 1})
    write(tmp_path / "types.json", {"corpus": ["c"], "min_count": "5"})
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"wobert {argv[0]}: error: ")
    assert re.search(blamed, err), err


# Each CLUE task's defaults, as the finetune/<task>.py scripts had them (make finetune TASK=...).
TASK_DEFAULTS = {  # maxlen, epochs, batch size, lr
    "tnews": (64, 3, 32, 2e-5), "iflytek": (256, 3, 32, 2e-5), "afqmc": (128, 3, 32, 2e-5),
    "ocnli": (128, 3, 32, 3e-5), "cmnli": (128, 2, 32, 3e-5), "csl": (256, 3, 16, 2e-5),
}


def finetune_config(tmp_path, *argv: str) -> FinetuneConfig:
    parser = Parser(prog="wobert finetune")
    finetune_command.add_cli(parser)
    args = parser.parse_args(["--model", "m", "--out", str(tmp_path), *argv])
    spec = finetune_command.task_spec_from_args(args)
    return finetune_command.config_from_args(args, spec.defaults, predict_test=not args.no_test)


@pytest.mark.parametrize("task", TASK_DEFAULTS)
def test_each_task_trains_with_its_own_defaults_unless_an_option_says_otherwise(tmp_path, task):
    config = finetune_config(tmp_path, "--task", task)
    assert (config.maxlen, config.epochs, config.batch_size, config.lr) == TASK_DEFAULTS[task]
    assert config == TASKS[task].defaults
    given = finetune_config(tmp_path, "--task", task, "--maxlen", "40", "--lr", "1e-3", "--no-test",
                            "--seed", "7")
    assert (given.maxlen, given.lr, given.seed, given.predict_test) == (40, 1e-3, 7, False)
    assert (given.epochs, given.batch_size) == TASK_DEFAULTS[task][1:3]


def test_a_custom_task_and_compare_keep_the_plain_defaults(tmp_path):
    assert finetune_config(tmp_path, "--train", "t.jsonl") == FinetuneConfig()
    parser = Parser(prog="wobert compare")
    compare_command.add_cli(parser)
    args = parser.parse_args(["--char-model", "c", "--word-model", "w", "--data", "d", "--out", str(tmp_path)])
    assert finetune_command.config_from_args(args, predict_test=False) == FinetuneConfig(predict_test=False)


def test_finetune_help_shows_each_tasks_default(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for column, (option, plain) in enumerate((("--maxlen", 128), ("--epochs", 3), ("--batch-size", 32),
                                               ("--lr", 2e-5))):
        each = ", ".join(f"{task} {values[column]}" for task, values in TASK_DEFAULTS.items())
        assert f"default: per task, {each}; custom {plain}" in help_text, option
