"""Task readers: CLUE JSON lines and labels.json, generic JSONL/TSV, quirks and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wobert.tasks import (
    LIST_SEPARATOR,
    TASKS,
    TaskSpec,
    holdout,
    load_task,
    read_labels,
    read_split,
    write_predictions,
)


def write_lines(path: Path, rows: list, final_newline: bool = True) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def nli_row(label: str, i: int = 0) -> dict:
    return {"sentence1": f"前提{i}", "sentence2": f"假设{i}", "label": label, "id": i}


def test_json_lines_keep_u2028_inside_text_and_need_no_final_newline(tmp_path):
    path = write_lines(tmp_path / "dev.json", [
        {"label": "1", "sentence": "第一行\u2028还是第一条"},
        "",
        {"label": "0", "sentence": "最后一条没有换行"},
    ], final_newline=False)
    split = read_split(path, TaskSpec("t", "sentence"))
    assert split.texts() == ["第一行\u2028还是第一条", "最后一条没有换行"]
    assert [e.line for e in split.examples] == [1, 3]
    assert [e.label for e in split.examples] == ["1", "0"]
    assert split.pairs() is None


def test_nli_rows_labelled_dash_are_skipped_and_counted(tmp_path):
    rows = [nli_row("entailment", 0), nli_row("-", 1), nli_row("neutral", 2), nli_row("-", 3)]
    write_lines(tmp_path / "clue" / "ocnli" / "dev.json", rows)
    write_lines(tmp_path / "clue" / "ocnli" / "train.3k.json", rows)
    data = load_task("ocnli", tmp_path)
    assert data.train.path.name == "train.3k.json"
    assert [e.id for e in data.dev.examples] == [0, 2]
    assert data.dev.skipped == {"label '-'": 2}
    assert data.dev.pairs() == ["假设0", "假设2"]
    assert data.label_ids(data.dev) == [0, 1]
    assert data.summary()["dev"]["skipped"] == {"label '-'": 2}


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "train.json", [{"sentence": "好", "label": "1"}, "", '{"sentence": "坏",'])
    with pytest.raises(ValueError, match=r"train\.json:3: not valid JSON"):
        read_split(path, TaskSpec("t", "sentence"))


def test_non_object_and_missing_field_name_the_line(tmp_path):
    path = write_lines(tmp_path / "a.json", ['["a list"]'])
    with pytest.raises(ValueError, match=r"a\.json:1: expected a JSON object"):
        read_split(path, TaskSpec("t", "sentence"))
    path = write_lines(tmp_path / "b.json", [{"sentence": "好"}, {"text": "坏"}])
    with pytest.raises(ValueError, match=r"b\.json:2: no field 'sentence' \(fields: text\)"):
        read_split(path, TaskSpec("t", "sentence"))


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"sentence": "ok", "label": "1"}\n{"sentence": "\xff", "label": "1"}\n')
    with pytest.raises(ValueError, match=r"bad\.json:2: not UTF-8"):
        read_split(path, TaskSpec("t", "sentence"))


def test_label_outside_labels_json_is_an_error_with_the_value(tmp_path):
    root = tmp_path / "clue" / "tnews"
    write_lines(root / "labels.json", [{"label": "100", "label_desc": "story"},
                                       {"label": "101", "label_desc": "culture"}], final_newline=False)
    write_lines(root / "train.json", [{"sentence": "甲", "label": "100"}, {"sentence": "乙", "label": "101"}])
    write_lines(root / "dev.json", [{"sentence": "丙", "label": "101"}, {"sentence": "丁", "label": "105"}])
    with pytest.raises(ValueError, match=r"dev\.json:2: label '105' is not one of the task's 2 labels \(100, 101\)"):
        load_task("tnews", tmp_path)


def test_labels_json_lines_or_array(tmp_path):
    lines = write_lines(tmp_path / "l1.json", [{"label": "b"}, {"label": "a"}], final_newline=False)
    array = tmp_path / "l2.json"
    array.write_text(json.dumps([{"label": 3, "label_des": "x"}, {"label": 1}]), encoding="utf-8")
    assert read_labels(lines) == ["b", "a"]
    assert read_labels(array) == ["3", "1"]
    write_lines(tmp_path / "l3.json", [{"label": "a"}, {"label": "a"}])
    with pytest.raises(ValueError, match="without repeats"):
        read_labels(tmp_path / "l3.json")


def test_custom_tsv_task_with_field_names_and_integer_labels(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("id\tq1\tq2\tgold\n7\t你好\t您好\t1\n8\t下雨\t晴天\t0", encoding="utf-8")
    spec = TaskSpec("custom", "q1", "q2", label_field="gold")
    data = load_task(spec, train=train)
    assert data.labels == ["0", "1"]
    assert data.train.pairs() == ["您好", "晴天"]
    assert data.train.ids() == ["7", "8"]
    assert data.dev is None and data.test is None
    test = tmp_path / "test.tsv"
    test.write_text("q1\tq2\tgold\n甲\t乙\t\n\t\t\n\n \t \t \n", encoding="utf-8")  # rows of empty cells stay rows
    read = load_task(spec, train=train, test=test).test
    assert not read.labelled and read.texts() == ["甲", "", " "] and [e.line for e in read.examples] == [2, 3, 5]
    spaced = tmp_path / "spaced.tsv"
    spaced.write_text("q1\tq2\tgold\n甲\t乙\tpos \n丙\t丁\tpos\n戊\t己\tneg\n", encoding="utf-8")
    assert load_task(spec, train=spaced).labels == ["neg", "pos"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("q1\tq2\tgold\n甲\t乙\t1\n甲\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.tsv:3: 2 tab-separated columns, the header has 3"):
        load_task(spec, train=bad)


def test_custom_jsonl_labels_from_training_data_and_int_values(tmp_path):
    train = write_lines(tmp_path / "mine.jsonl", [{"text": "好", "y": 1}, {"text": "坏", "y": 0}])
    data = load_task(TaskSpec("custom", "text", label_field="y"), train=train, dev=train)
    assert data.labels == ["0", "1"] and data.label_ids(data.dev) == [1, 0]
    unlabelled = write_lines(tmp_path / "x.jsonl", [{"text": "好"}])
    with pytest.raises(ValueError, match=r"x\.jsonl:1: no 'y' field"):
        load_task(TaskSpec("custom", "text", label_field="y"), train=unlabelled)


def test_the_label_set_comes_from_training_and_needs_two_labels(tmp_path):
    spec = TaskSpec("custom", "text", label_field="y")
    train = write_lines(tmp_path / "train.jsonl", [{"text": "好", "y": "pos"}, {"text": "坏", "y": "neg"}])
    dev = write_lines(tmp_path / "dev.jsonl", [{"text": "好", "y": "pos"}, {"text": "怪", "y": "meh"}])
    with pytest.raises(ValueError, match=r"dev\.jsonl:2: label 'meh' is not one of the task's 2 labels \(neg, pos\)"):
        load_task(spec, train=train, dev=dev)
    one = write_lines(tmp_path / "one.jsonl", [{"text": "好", "y": "pos"}, {"text": "行", "y": "pos"}])
    with pytest.raises(ValueError, match=r"one\.jsonl: every row has the label 'pos': a classifier needs "
                                         r"examples of at least two labels"):
        load_task(spec, train=one, dev=train)
    assert load_task(spec, train=one, dev=train, labels=["neg", "pos"]).labels == ["neg", "pos"]


def test_csl_keywords_are_joined_as_the_first_segment(tmp_path):
    row = {"id": 5, "abst": "本文研究分词。", "keyword": ["分词", "词表"], "label": "1"}
    path = write_lines(tmp_path / "dev.json", [row])
    split = read_split(path, TASKS["csl"])
    assert split.texts() == [f"分词{LIST_SEPARATOR}词表"]
    assert split.pairs() == ["本文研究分词。"]


def test_unlabelled_test_file_and_predictions_in_clue_format(tmp_path):
    path = write_lines(tmp_path / "test.json", [{"id": 0, "sentence": "甲"}, {"sentence": "乙"}])
    split = read_split(path, TASKS["tnews"])
    assert not split.labelled
    assert split.ids() == [0, 1]
    out = write_predictions(tmp_path / "out" / "tnews_predict.json", split.ids(), ["102", "体育"])
    with open(out, encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == [{"id": 0, "label": "102"}, {"id": 1, "label": "体育"}]
    with pytest.raises(ValueError):
        write_predictions(out, [0, 1], ["102"])


def test_missing_task_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files of task 'afqmc'"):
        load_task("afqmc", tmp_path)
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_task(TaskSpec("custom", "text"), train=tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError, match=f"data file {tmp_path} is a directory, not a file"):
        load_task(TaskSpec("custom", "text"), train=tmp_path)


def test_holdout_is_seeded_and_disjoint(tmp_path):
    path = write_lines(tmp_path / "t.json", [{"text": str(i), "label": "a"} for i in range(20)])
    split = read_split(path, TaskSpec("t", "text"))
    train, dev = holdout(split, 0.25, seed=1)
    assert len(train) == 15 and len(dev) == 5
    assert sorted(train.texts() + dev.texts()) == sorted(split.texts())
    assert holdout(split, 0.25, seed=1)[1].texts() == dev.texts()


def test_real_clue_files(shared_data):
    if not (shared_data / "clue").is_dir():
        pytest.skip("no clue/ in the shared data")
    iflytek = load_task("iflytek", shared_data)
    assert len(iflytek.labels) == 119 and len(iflytek.dev) == 2599 and iflytek.train is None
    assert sum(t.count("\u2028") for t in iflytek.dev.texts()) == 28
    ocnli = load_task("ocnli", shared_data)
    assert len(ocnli.dev) == 2950 and ocnli.dev.skipped == {"label '-'": 50}
    assert not ocnli.test.labelled and len(ocnli.test) == 3000
    tnews = load_task("tnews", shared_data)
    assert len(tnews.labels) == 15 and len(tnews.dev) == 10000
    assert tnews.test.ids()[:2] == [0, 1] and not tnews.test.labelled
