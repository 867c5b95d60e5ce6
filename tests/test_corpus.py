"""Corpus reading: formats, skipped lines, strict mode, deterministic chunked multiprocessing."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from wobert.corpus import (
    BAD_JSON,
    EMPTY,
    NO_TEXT,
    NOT_UTF8,
    Line,
    SkipLog,
    chunked,
    expand_paths,
    fold_chunks,
    iter_lines,
    map_ordered,
)


def _texts(lines):
    return [line.text for line in lines]


def test_plain_text_keeps_u2028_and_strips_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeff第一段\u2028仍是第一段\r\n\n  第二段 \n\u3000\n最后一行".encode("utf-8"))
    skips = SkipLog()
    lines = list(iter_lines(path, skips=skips))
    assert lines == [
        Line(str(path), 1, "第一段\u2028仍是第一段"),
        Line(str(path), 3, "第二段"),
        Line(str(path), 5, "最后一行"),
    ]
    assert skips.counts == {EMPTY: 2} and skips.errors == 0


def test_jsonl_and_gzip(tmp_path):
    records = [{"text": "你好"}, {"text": "世界", "label": 1}]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    (tmp_path / "a.jsonl").write_text(body, encoding="utf-8")
    with gzip.open(tmp_path / "b.json.gz", "wt", encoding="utf-8") as f:
        f.write(body)
    with gzip.open(tmp_path / "c.txt.gz", "wt", encoding="utf-8") as f:
        f.write("压缩文本\n")
    lines = list(iter_lines(tmp_path))
    assert [(os.path.basename(line.path), line.text) for line in lines] == [
        ("a.jsonl", "你好"), ("a.jsonl", "世界"), ("b.json.gz", "你好"), ("b.json.gz", "世界"),
        ("c.txt.gz", "压缩文本"),
    ]


def test_text_field_option(tmp_path):
    (tmp_path / "tnews.json").write_text('{"sentence": "句子", "label": "1"}\n', encoding="utf-8")
    assert _texts(iter_lines(tmp_path / "tnews.json", text_field="sentence")) == ["句子"]
    skips = SkipLog()
    assert _texts(iter_lines(tmp_path / "tnews.json", skips=skips)) == []
    assert skips.counts == {NO_TEXT: 1}


def test_bad_lines_are_counted_with_file_and_line(tmp_path, caplog):
    txt = tmp_path / "bad.txt"
    txt.write_bytes("好\n".encode() + b"\xff\xfe bad\n" + "也好\n".encode())
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "ok"}\n{"text": \n[1, 2]\n{"text": 3}\n', encoding="utf-8")
    skips = SkipLog()
    with caplog.at_level("WARNING", logger="wobert.corpus"):
        assert _texts(iter_lines([txt, jsonl], skips=skips)) == ["好", "也好", "ok"]
    assert skips.counts == {NOT_UTF8: 1, BAD_JSON: 1, NO_TEXT: 2}
    assert skips.examples[NOT_UTF8] == [f"{txt}:2"]
    assert skips.examples[NO_TEXT] == [f"{jsonl}:3", f"{jsonl}:4"]
    assert f"{txt}:2" in caplog.text
    summary = skips.summary()
    assert summary.startswith("skipped 4 lines") and f"{txt}:2" in summary


def test_strict_raises_with_file_and_line(tmp_path):
    txt = tmp_path / "bad.txt"
    txt.write_bytes(b"ok\n\nok\n\xc3\x28\n")
    with pytest.raises(ValueError, match=r"bad\.txt:4: not UTF-8"):
        list(iter_lines(txt, strict=True))


def test_missing_file_fails_before_reading(tmp_path):
    (tmp_path / "a.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        iter_lines([tmp_path / "a.txt", tmp_path / "nope.txt"])


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "x.txt.gz"
    path.write_bytes(b"not gzip at all\n")
    with pytest.raises(ValueError, match="x.txt.gz: cannot read gzip"):
        list(iter_lines(path))


def test_directories_expand_sorted_recursively_without_hidden(tmp_path):
    for name in ("b.txt", "a/z.txt", "a/y.txt", ".hidden.txt", "c.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    got = [p.relative_to(tmp_path).as_posix() for p in expand_paths(tmp_path)]
    assert got == ["a/y.txt", "a/z.txt", "b.txt", "c.txt"]


def test_skiplog_merge_keeps_counts_and_first_examples():
    a, b = SkipLog(max_examples=2), SkipLog(max_examples=2)
    a.add(NOT_UTF8, "x", 1)
    b.add(NOT_UTF8, "y", 2)
    b.add(NOT_UTF8, "y", 3)
    b.add(EMPTY, "y", 4)
    a.merge(b)
    assert a.counts == {NOT_UTF8: 3, EMPTY: 1}
    assert a.examples[NOT_UTF8] == ["x:1", "y:2"]
    assert a.to_dict()[NOT_UTF8] == {"lines": 3, "examples": ["x:1", "y:2"]}


def test_chunked_by_count_and_weight():
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunked(["aaa", "b", "cc", "d"], 3, weight=len)) == [["aaa"], ["b", "cc"], ["d"]]
    assert list(chunked([], 3)) == []


_OFFSET = 0


def _set_offset(value):
    global _OFFSET
    _OFFSET = value


def _sum_plus_offset(chunk):
    return sum(chunk) + _OFFSET, os.getpid()


def test_map_ordered_is_ordered_and_runs_in_workers():
    chunks = list(chunked(range(100), 7))
    expected = [sum(c) + 1000 for c in chunks]
    one = list(map_ordered(_sum_plus_offset, chunks, workers=1, initializer=_set_offset, initargs=(1000,)))
    two = list(map_ordered(_sum_plus_offset, chunks, workers=2, initializer=_set_offset, initargs=(1000,)))
    assert [r for r, _ in one] == expected == [r for r, _ in two]
    assert {pid for _, pid in one} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in two}


def _count_letters(state, chunk):
    if "!" in chunk:
        raise ValueError(f"bad chunk {chunk!r}")
    state[0].update(chunk)
    state[1].add(os.getpid() + _OFFSET)
    return state


def _empty_state():
    return Counter(), set()


def test_fold_chunks_gives_the_same_total_whatever_the_workers():
    chunks = ["abc", "bcd", "cde"] * 20
    expected = Counter("".join(chunks))
    for workers in (1, 2, 3):
        states = fold_chunks(_count_letters, chunks, _empty_state, workers=workers,
                             initializer=_set_offset, initargs=(0,))
        assert len(states) == workers
        assert sum((counts for counts, _ in states), Counter()) == expected
        pids = set().union(*(p for _, p in states))
        assert pids == {os.getpid()} or workers > 1
    # that the workers take their share: KILLED_WORKER's fold below (a chunk killed in a worker)


def test_fold_chunks_raises_a_worker_error_in_the_parent():
    chunks = ["abc"] * 50 + ["x!"] + ["abc"] * 50
    with pytest.raises(ValueError, match="bad chunk 'x!'"):
        fold_chunks(_count_letters, chunks, _empty_state, workers=2)


def test_fold_chunks_failing_with_chunks_still_queued_exits_cleanly():
    script = (
        "from wobert.corpus import fold_chunks\n"
        "def step(state, chunk):\n"
        "    raise ValueError('boom')\n"
        "try:\n"
        "    fold_chunks(step, (['x' * 100000] for _ in range(1000)), list, workers=2)\n"
        "except ValueError as err:\n"
        "    print('raised', err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "raised boom\n"


KILLED_WORKER = """
import multiprocessing, os, signal, sys, time
from wobert.corpus import WorkerLost, fold_chunks, map_ordered, worker_context

def die_in_a_worker(x):
    if x >= 7 and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x

def add(total, x):
    return total + die_in_a_worker(x)

if __name__ == "__main__":
    if sys.argv[1] == "tensorflow":
        import wobert.backend
    print(worker_context().get_start_method())
    print(list(map_ordered(abs, range(-20, 0), workers=2)) == list(range(20, 0, -1)))
    for name, run in (("map", lambda: list(map_ordered(die_in_a_worker, range(50), workers=2))),
                      ("fold", lambda: fold_chunks(add, range(50), int, workers=3))):
        try:
            run()
            print(name, "finished")
        except WorkerLost as err:
            print(name, err)
"""


@pytest.mark.parametrize("loaded, method", [("nothing", "fork"), ("tensorflow", "spawn")])
def test_a_killed_worker_ends_map_and_fold_with_one_clear_error(tmp_path, loaded, method):
    script = tmp_path / "killed_worker.py"
    script.write_text(KILLED_WORKER, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), loaded], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[:2] == [method, "True"], proc.stderr
    for name, line in zip(("map", "fold"), lines[2:]):
        assert re.fullmatch(rf"{name} worker process \d+ was killed by SIGKILL \(as the "
                            r"out-of-memory killer does\); the work it held is lost", line), line
    assert "Traceback" not in proc.stderr
