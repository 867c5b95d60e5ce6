"""The command line: errors as one line (only programming errors keep their traceback), bad
options blamed on the flag before any work, a quiet and fast --help, a closed pipe, no
TensorFlow start-up noise."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wobert.checks import check_input_file
from wobert.cli import main, run_guarded
from wobert.errors import UserError
from wobert.finetune_config import FinetuneConfig

REPO = Path(__file__).resolve().parents[1]


def python(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_help_of_every_command_is_quiet_and_does_not_import_tensorflow():
    script = (
        "import contextlib, io, sys\n"
        "from wobert.cli import COMMANDS, main\n"
        "for name in COMMANDS:\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            main([name, '--help'])\n"
        "        except SystemExit as exit:\n"
        "            assert exit.code == 0 and '--' in out.getvalue(), name\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = python("-c", script)
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\n", "")


def test_tensorflow_loads_without_start_up_lines():
    result = python("-c", "import wobert.backend")
    assert (result.returncode, result.stderr) == (0, "")


def test_user_errors_are_one_line_and_programming_errors_keep_their_traceback(capsys):
    def fail(err):
        def run():
            raise err
        return run

    assert run_guarded("x", fail(UserError("bad.json: line 3: not valid JSON"))) == 2
    assert capsys.readouterr().err == "wobert x: error: bad.json: line 3: not valid JSON\n"
    full = OSError(errno.ENOSPC, "No space left on device", "out/metrics.jsonl")
    assert run_guarded("x", fail(full)) == 2
    assert capsys.readouterr().err == "wobert x: error: out/metrics.jsonl: No space left on device\n"
    assert run_guarded("x", fail(FileNotFoundError("data file not found: a.jsonl"))) == 2
    assert capsys.readouterr().err == "wobert x: error: data file not found: a.jsonl\n"
    assert run_guarded("x", fail(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "wobert x: interrupted\n"
    for bug in (ValueError("a bug"), TypeError("another"), KeyError("k")):
        with pytest.raises(type(bug)):
            run_guarded("x", fail(bug))


def test_tokenize_into_a_closed_pipe_ends_quietly(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "中", "国"]),
                     encoding="utf-8")
    text = tmp_path / "in.txt"
    text.write_text("中国\n" * 200_000, encoding="utf-8")
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m wobert tokenize {text} --vocab {vocab} "
                       "2>err.txt | head -1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout == "[CLS] 中 国 [SEP]\n"
    assert (tmp_path / "err.txt").read_text() == "" and result.returncode == 141


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "config.json").write_text(json.dumps({"steps": 10}))
    return tmp_path


@pytest.mark.parametrize("argv, blamed", [
    (["finetune", "--model", "m", "--out", "o", "--max-train", "0"], "argument --max-train: must be >= 1, not 0"),
    (["finetune", "--model", "m", "--out", "o", "--max-dev", "-5"], "argument --max-dev: must be >= 1, not -5"),
    (["finetune", "--model", "m", "--out", "o", "--dropout", "1"], "argument --dropout: must be >= 0 and < 1"),
    (["pretrain", "config.json", "--data", "d", "--out", "o", "--steps", "-5"], "argument --steps: must be >= 1"),
    (["pretrain", "config.json", "--data", "d", "--out", "o", "--learning-rate", "x"],
     "argument --learning-rate: a number is needed, not 'x'"),
    (["pretrain", "config.json", "--data", "d", "--out", "a-file"],
     "argument --out: a-file exists and is not a directory"),
    (["finetune", "--model", "m", "--out", "a-file/sub"], "argument --out: a-file/sub: "),
    (["vocab", "build", "--out", "a-file", "--corpus", "c"], "argument --out: a-file exists and is not a directory"),
    (["data", "build", "--out", "a-file", "--corpus", "c"], "argument --out: a-file exists and is not a directory"),
    (["data", "build", "--out", "o", "--mask-rate", "1.5"], "argument --mask-rate: must be > 0 and < 1, not 1.5"),
    (["tokenize", "--vocab", "v", "--workers", "0"], "argument --workers: must be >= 1, not 0"),
    (["demo", "--out", "a-file"], "argument --out: a-file exists and is not a directory"),
])
def test_bad_options_are_blamed_on_the_flag_in_one_line_before_any_work(files, argv, blamed, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(files)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and blamed in err and err.count("\n") == 1, err
    assert "see wobert" in err


def test_a_directory_given_for_a_file_is_named_as_one(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    (files / "d").mkdir()
    runs = [(["tokenize", "d", "--vocab", "v"], "wobert tokenize: error: input file d is a directory, not a file"),
            (["data", "verify", "a-file"], "wobert data: error: a-file/manifest.json: Not a directory")]
    for argv, expected in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err == expected + "\n", err
    os.mkfifo(files / "pipe")  # as `wobert tokenize <(...)` passes one: readable, not a regular file
    assert check_input_file(files / "pipe", "input file") == files / "pipe"


@pytest.mark.parametrize("option, value, blamed", [
    ("--tasks", "tnews,ocnli,tnews", "--tasks repeats tnews: each run would be the same"),
    ("--seeds", "1,2,1,2", "--seeds repeats 1, 2: each run would be the same"),
])
def test_compare_refuses_repeated_tasks_and_seeds(option, value, blamed, tmp_path, capsys):
    argv = ["compare", "--char-model", "c", "--word-model", "w", "--data", "d", "--out", str(tmp_path / "o")]
    assert main([*argv, option, value]) == 2
    err = capsys.readouterr().err
    assert err == f"wobert compare: error: {blamed}\n", err


def test_config_values_of_the_wrong_type_or_range_name_the_key():
    with pytest.raises(UserError, match="max_train must be >= 1 .*not 0"):
        FinetuneConfig(max_train=0)
    with pytest.raises(UserError, match="max_dev must be >= 1 .*not -5"):
        FinetuneConfig(max_dev=-5)
    with pytest.raises(UserError, match="finetune config: lr must be a number, not '0.1'"):
        FinetuneConfig(lr="0.1")
    from wobert.records import DataOptions
    from wobert.vocab import VocabSpec

    with pytest.raises(UserError, match="data options: corpus must be a list of strings, not"):
        DataOptions(corpus=[1])
    with pytest.raises(UserError, match="vocab options: workers must be an integer, not True"):
        VocabSpec(base_vocab="v", workers=True)

