"""Pretraining records: packing, masking (NumPy and TF), TFRecord files, resume, the reader."""
from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from processes import children, wait_until

from wobert.cli import UserError, main
from wobert.corpus import iter_lines
from wobert.dataset import make_dataset
from wobert.manifest import Manifest, read_manifest
from wobert.masking import MaskSpec, mask_batch, mask_batch_tf, random_ranges
from wobert.packing import WordEncoder, document_sequences, pack_sentences, split_sentences
from wobert.records import DataOptions, build_records
from wobert.tfrecord import Crc32c, RecordWriter, Varints
from wobert.tokenizer import (
    SPECIAL_TOKENS,
    Tokenizer,
    extend_vocab,
    load_tokenizer,
    read_vocab,
    simplify_vocab,
)

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "我们在北京大学学习中文。", "今天的天气非常好！", "你知道这个问题的答案吗？", "他说：“明天见。”",
    "中国人民银行发布了新的数据。", "学生们正在教室里认真地读书。", "这是一个很长的句子，里面有很多词语和标点符号，"
    "用来测试长句子被切分到多个序列的情况。", "经济发展需要科学技术的支持。", "手机和电脑都是现代生活的工具。",
]
WORDS = ["我们", "北京大学", "学习", "中文", "今天", "天气", "非常", "知道", "问题", "答案", "明天",
         "中国人民银行", "发布", "数据", "学生", "正在", "教室", "认真", "读书", "句子", "词语",
         "标点符号", "测试", "序列", "经济", "发展", "需要", "科学技术", "支持", "手机", "电脑", "现代", "生活", "工具"]


def write_corpus(path: Path, documents: int, seed: int = 0) -> list[str]:
    """Documents of 1-12 sentences (some over one line's worth of tokens), one per line."""
    rng = random.Random(seed)
    docs = ["".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 12))) for _ in range(documents)]
    path.write_text("\n".join(docs) + "\n\n", encoding="utf-8")  # a trailing empty line is skipped
    return docs


@pytest.fixture(scope="module")
def tiny_vocab(tmp_path_factory) -> Path:
    """A handmade word vocabulary: specials, the corpus characters and some of its words."""
    chars = sorted({ch for s in SENTENCES for ch in s})
    tokens = list(SPECIAL_TOKENS) + [f"[unused{i}]" for i in range(1, 4)] + chars + ["x", "##y"]
    directory = tmp_path_factory.mktemp("vocab")
    Tokenizer(extend_vocab({t: i for i, t in enumerate(tokens)}, WORDS)).save(directory)
    return directory


@pytest.fixture(scope="module")
def base_word_vocab(tmp_path_factory, base_vocab_path) -> Path:
    """bert-base-chinese simplified, plus the handmade words: a small real word vocabulary."""
    token_dict, _ = simplify_vocab(read_vocab(base_vocab_path))
    directory = tmp_path_factory.mktemp("word_vocab")
    Tokenizer(extend_vocab(token_dict, WORDS + ["人民", "政府", "经济", "发展", "工作"])).save(directory)
    return directory


def read_records(data_dir: Path, **kwargs) -> list[dict[str, np.ndarray]]:
    """Every sequence of a records directory in order, unpadded."""
    rows = []
    for batch in make_dataset(data_dir, 64, shuffle=False, repeat=False, **kwargs):
        batch = {k: v.numpy() for k, v in batch.items()}
        for i in range(len(batch["token_ids"])):
            n = int((batch["token_ids"][i] != 0).sum())
            k = int(batch["masked_weights"][i].sum())
            rows.append({"token_ids": batch["token_ids"][i, :n], "positions": batch["masked_positions"][i, :k],
                         "ids": batch["masked_ids"][i, :k], "weights": batch["masked_weights"][i]})
    return rows


def restored(row: dict[str, np.ndarray]) -> list[int]:
    ids = row["token_ids"].copy()
    ids[row["positions"]] = row["ids"]
    return ids.tolist()


def shard_sums(manifest: Manifest) -> list[str]:
    return [s.sha256 for s in manifest.shards]


# ---------------------------------------------------------------------------------------
# Documents to sequences
# ---------------------------------------------------------------------------------------


def test_split_sentences_keeps_every_character():
    text = "他说：“明天见。”然后走了！真的吗？？是的\n第二行。\n\n"
    sentences = split_sentences(text)
    assert sentences == ["他说：“明天见。”", "然后走了！", "真的吗？？", "是的\n", "第二行。"]
    assert "".join(sentences) == text.rstrip("\n")  # only blank pieces are left out
    assert split_sentences("  \n") == []


def test_pack_sentences_is_greedy_and_splits_long_sentences_at_words():
    def sentence(n, word=1):
        return list(range(n)), [1 if i % word == 0 else 0 for i in range(n)]

    sentences = [sentence(3), sentence(4), sentence(2), sentence(11, word=4), sentence(1)]
    packed = list(pack_sentences(sentences, maxlen=8))  # room for 6 tokens
    # 3 | 4+2 | 11 tokens in words of 4: cut before words at 4 and 8 | its last word + the next sentence
    assert [len(ids) for ids, _ in packed] == [3, 6, 4, 4, 4]
    assert sum((ids for ids, _ in packed), []) == sum((ids for ids, _ in sentences), [])
    assert sum((s for _, s in packed), []) == sum((s for _, s in sentences), [])
    assert all(starts[0] == 1 for _, starts in packed)


def test_pack_sentences_cuts_inside_a_word_longer_than_a_sequence():
    packed = list(pack_sentences([(list(range(10)), [1] + [0] * 9)], maxlen=6))
    assert [len(ids) for ids, _ in packed] == [4, 4, 2]


# ---------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------

SPEC = MaskSpec(mask_id=4, random_ranges=random_ranges(range(1000), {0, 1, 2, 3, 4, 7}), mask_rate=0.15,
                max_predictions=23)


def synthetic_batch(rows: int, width: int, seed: int = 0):
    """Padded sequences of random length with words of 1-4 tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(width // 4, width + 1, rows)
    ids = np.where(np.arange(width) < lengths[:, None], rng.integers(10, 1000, (rows, width)), 0)
    ids[:, 0] = 2
    ids[np.arange(rows), lengths - 1] = 3
    starts = np.zeros((rows, width), np.int64)
    for r in range(rows):
        i = 1
        while i < lengths[r] - 1:
            starts[r, i] = 1
            i += int(rng.integers(1, 5))
    return ids.astype(np.int32), starts, lengths


def check_masking(ids, starts, lengths, out, spec):
    """Rates within 0.5 points of the asked ones; whole words; positions ascending, in range."""
    token_ids, positions, masked_ids, weights = (np.asarray(x) for x in out)
    real = weights > 0
    assert (positions[~real] == 0).all() and (masked_ids[~real] == 0).all()
    inner_tokens = int((lengths - 2).sum())
    assert abs(real.sum() / inner_tokens - spec.mask_rate) < 0.005
    chosen = np.zeros_like(ids, bool)
    for r in range(len(ids)):
        p = positions[r][real[r]]
        assert (np.diff(p) > 0).all() and (p >= 1).all() and (p <= lengths[r] - 2).all()
        assert (ids[r, p] == masked_ids[r][real[r]]).all()
        chosen[r, p] = True
        untouched = np.ones(ids.shape[1], bool)
        untouched[p] = False
        assert (token_ids[r][untouched] == ids[r][untouched]).all()
        if spec.whole_word:
            word = np.cumsum(np.where(np.arange(ids.shape[1]) == 1, 1, starts[r])) * (
                (np.arange(ids.shape[1]) >= 1) & (np.arange(ids.shape[1]) < lengths[r] - 1))
            for w in np.unique(word[word > 0]):
                assert len(set(chosen[r][word == w])) == 1, "a word was split"
    new = token_ids[np.nonzero(chosen)]
    old = ids[np.nonzero(chosen)]
    as_mask = (new == spec.mask_id).mean()
    kept = (new == old).mean()
    assert abs(as_mask - 0.8) < 0.005 and abs(kept - 0.1) < 0.005 and abs(1 - as_mask - kept - 0.1) < 0.005
    swapped = new[(new != spec.mask_id) & (new != old)]
    assert not np.isin(swapped, [0, 1, 2, 3, 4, 7]).any() and (swapped < 1000).all()


@pytest.mark.parametrize("whole_word", [False, True])
def test_mask_batch_rates_and_whole_words(whole_word):
    spec = SPEC._replace(whole_word=whole_word)
    ids, starts, lengths = synthetic_batch(6000, 128)
    out = mask_batch(ids, starts, lengths, spec, np.random.default_rng(1))
    check_masking(ids, starts, lengths, out, spec)
    again = mask_batch(ids, starts, lengths, spec, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(out, again))


@pytest.mark.parametrize("whole_word", [False, True])
def test_mask_batch_tf_rates_and_whole_words(whole_word):
    from wobert.backend import tf

    spec = SPEC._replace(whole_word=whole_word)
    ids, starts, lengths = synthetic_batch(6000, 128, seed=2)
    out = mask_batch_tf(ids, starts, lengths, spec, tf.constant([5, 6], tf.int64))
    out = [out[k].numpy() for k in ("token_ids", "masked_positions", "masked_ids", "masked_weights")]
    check_masking(ids, starts, lengths, out, spec)


def test_masking_short_sequences_and_the_prediction_cap():
    ids = np.array([[2, 3, 0, 0], [2, 9, 3, 0], [2, 9, 9, 3]], np.int32)
    lengths = np.array([2, 3, 4])
    spec = SPEC._replace(max_predictions=1, mask_rate=0.999)
    out = mask_batch(ids, None, lengths, spec, np.random.default_rng(0))
    assert out.masked_positions.shape == (3, 1)
    assert out.masked_weights[:, 0].tolist() == [0.0, 1.0, 1.0]  # nothing to mask in [CLS] [SEP]


# ---------------------------------------------------------------------------------------
# TFRecord files without TensorFlow
# ---------------------------------------------------------------------------------------


def test_crc32c_known_values():
    crc = Crc32c()
    assert crc(b"123456789") == 0xE3069283
    assert crc(b"") == 0
    assert crc(bytes(32)) == 0x8A9136AA
    long = bytes(range(256)) * 20  # grows the tables
    assert crc(long) == crc(long)


def test_records_read_back_with_tensorflow(tmp_path):
    from wobert.backend import tf

    records = [{"token_ids": [2, 300, 70000, 3], "masked_positions": [1], "masked_ids": [5]},
               {"token_ids": list(range(2, 200)), "masked_positions": [], "masked_ids": []}]
    writer = RecordWriter(tmp_path / "a.tfrecord", Varints(1 << 17), Crc32c())
    for record in records:
        writer.write(record)
    assert not (tmp_path / "a.tfrecord").exists()
    writer.close()
    assert not (tmp_path / "a.tfrecord.tmp").exists()
    features = {k: tf.io.RaggedFeature(tf.int64) for k in records[0]}
    read = [tf.io.parse_single_example(r, features) for r in tf.data.TFRecordDataset(str(tmp_path / "a.tfrecord"))]
    assert [{k: v.numpy().tolist() for k, v in r.items()} for r in read] == records


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


def test_round_trip_static_token_masking(tmp_path, tiny_vocab):
    docs = write_corpus(tmp_path / "corpus.txt", 120)
    options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(tiny_vocab), maxlen=32,
                          shard_chars=2000, seed=3)
    manifest = build_records(options, tmp_path / "out", progress=False)
    tokenizer = load_tokenizer(tiny_vocab)
    assert manifest.complete and len(manifest.shards) > 3 and manifest.documents == len(docs)
    assert manifest.skipped["empty"]["lines"] == 1
    rows = read_records(tmp_path / "out")
    assert len(rows) == manifest.sequences
    assert sum(len(r["token_ids"]) for r in rows) == manifest.tokens
    assert all(r["token_ids"][0] == tokenizer.cls_id and r["token_ids"][-1] == tokenizer.sep_id
               and len(r["token_ids"]) <= 32 for r in rows)
    assert any(len(r["token_ids"]) == 32 for r in rows)  # long documents fill sequences
    expected = [i for doc in docs for i in tokenizer.encode(doc)[0][1:-1]]
    assert [i for r in rows for i in restored(r)[1:-1]] == expected
    # decoded, a one-sequence document is its text as the tokenizer sees it (normalized, no spaces)
    encoder = WordEncoder(tokenizer, whole_words=False)
    counts = [len(document_sequences(encoder, doc, 32)) for doc in docs]
    starts = np.cumsum([0] + counts[:-1])
    singles = [(doc, rows[i]) for doc, i, n in zip(docs, starts, counts) if n == 1]
    assert len(singles) > 10 and all(tokenizer.decode(restored(row)) == doc for doc, row in singles)
    predicted = sum(len(r["ids"]) for r in rows)
    assert predicted == manifest.predictions and 0.10 < predicted / len(expected) < 0.20
    assert read_manifest(tmp_path / "out").vocab_sha256 == manifest.vocab_sha256
    assert (tmp_path / "out" / "vocab" / "vocab.txt").read_bytes() == (tiny_vocab / "vocab.txt").read_bytes()


def test_dynamic_wwm_round_trip_and_fresh_masks_each_epoch(tmp_path, tiny_vocab):
    docs = write_corpus(tmp_path / "corpus.txt", 60, seed=1)
    options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(tiny_vocab), maxlen=24,
                          masking="wwm", dynamic=True, shard_chars=3000)
    manifest = build_records(options, tmp_path / "out", progress=False)
    assert manifest.dynamic and manifest.predictions == 0 and manifest.max_predictions == 4 + 3
    tokenizer = load_tokenizer(tiny_vocab)
    rows = read_records(tmp_path / "out", seed=7)
    assert [i for r in rows for i in restored(r)[1:-1]] == [i for d in docs for i in tokenizer.encode(d)[0][1:-1]]
    assert any(len(r["ids"]) for r in rows)
    again = read_records(tmp_path / "out", seed=7)
    other = read_records(tmp_path / "out", seed=8)
    assert all((a["positions"].tolist() == b["positions"].tolist()) for a, b in zip(rows, again))
    assert any((a["positions"].tolist() != b["positions"].tolist()) for a, b in zip(rows, other))


def test_static_wwm_never_splits_a_word(tmp_path, tiny_vocab):
    docs = write_corpus(tmp_path / "corpus.txt", 150, seed=2)
    # a char tokenizer: words are jieba words of several characters
    char_vocab = tmp_path / "char_vocab.txt"
    char_vocab.write_text((tiny_vocab / "vocab.txt").read_text(encoding="utf-8").split("我们\n")[0],
                          encoding="utf-8")
    options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(char_vocab), maxlen=40,
                          masking="wwm", dupe_factor=3)
    manifest = build_records(options, tmp_path / "out", progress=False)
    assert manifest.tokenizer == "char"
    encoder = WordEncoder(load_tokenizer(char_vocab), whole_words=True)
    sequences = [s for d in docs for s in document_sequences(encoder, d, 40)]
    rows = read_records(tmp_path / "out")
    assert len(rows) == 3 * len(sequences)
    multi = 0
    for row, (ids, starts) in zip(rows, sequences * 3):
        assert restored(row) == ids
        word = np.cumsum(starts)
        chosen = set(word[row["positions"]].tolist())
        for w in chosen:
            assert set(row["positions"].tolist()) >= set(np.flatnonzero(word == w).tolist())
            multi += (word == w).sum() > 1
    assert multi > 50  # words of several characters were masked whole


def test_masking_rates_over_a_shard_of_real_text(tmp_path, shared_data, base_word_vocab):
    lines = itertools.islice(iter_lines(shared_data / "corpus" / "peoples_daily_199801.txt"), 1500)
    (tmp_path / "pd.txt").write_text("\n".join(line.text for line in lines), encoding="utf-8")
    for masking in ("token", "wwm"):
        options = DataOptions(corpus=[str(tmp_path / "pd.txt")], vocab=str(base_word_vocab), maxlen=128,
                              masking=masking, dupe_factor=4, shard_chars=10 ** 7)
        out = tmp_path / masking
        manifest = build_records(options, out, progress=False)
        assert len(manifest.shards) == 1 and manifest.sequences > 1500
        inner = manifest.tokens - 2 * manifest.sequences
        assert abs(manifest.predictions / inner - 0.15) < 0.005
        rows = read_records(out)
        new = np.concatenate([r["token_ids"][r["positions"]] for r in rows])
        old = np.concatenate([r["ids"] for r in rows])
        mask_id = read_manifest(out).special_ids["mask"]
        assert abs((new == mask_id).mean() - 0.8) < 0.005
        assert abs((new == old).mean() - 0.1) < 0.005


def test_output_does_not_depend_on_workers(tmp_path, tiny_vocab):
    write_corpus(tmp_path / "corpus.txt", 200, seed=4)
    runs = {}
    for workers in (1, 2):
        options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(tiny_vocab), maxlen=32,
                              masking="wwm", shard_chars=2000, workers=workers, dupe_factor=2)
        runs[workers] = shard_sums(build_records(options, tmp_path / f"w{workers}", progress=False))
    assert runs[1] == runs[2] and len(runs[1]) > 4


def test_resume_rebuilds_missing_and_broken_shards_identically(tmp_path, tiny_vocab):
    write_corpus(tmp_path / "corpus.txt", 200, seed=5)
    options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(tiny_vocab), maxlen=32,
                          shard_chars=2000)
    reference = shard_sums(build_records(options, tmp_path / "a", progress=False))
    out = tmp_path / "b"
    build_records(options, out, progress=False)
    (out / "shard-00001.tfrecord").unlink()
    (out / "shard-00002.tfrecord").write_bytes(b"broken")
    (out / "shard-00003.tfrecord.tmp").write_bytes(b"half written")
    kept = (out / "shard-00000.tfrecord").stat().st_mtime_ns
    time.sleep(0.01)
    manifest = build_records(options, out, progress=False)
    assert shard_sums(manifest) == reference
    assert (out / "shard-00000.tfrecord").stat().st_mtime_ns == kept  # finished shards are skipped
    assert not list(out.glob("*.tmp"))


def test_killed_build_resumes_to_the_same_shards(tmp_path, tiny_vocab):
    write_corpus(tmp_path / "corpus.txt", 3000, seed=6)
    args = ["--corpus", str(tmp_path / "corpus.txt"), "--vocab", str(tiny_vocab), "--maxlen", "32",
            "--shard-chars", "3000", "--workers", "1", "--dupe-factor", "3"]
    assert main(["data", "build", *args, "--out", str(tmp_path / "a")]) == 0
    reference = shard_sums(read_manifest(tmp_path / "a"))
    out = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "wobert", "data", "build", *args, "--out", str(out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                if read_manifest(out).shards:
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    interrupted = read_manifest(out)
    assert not interrupted.complete and 0 < len(interrupted.shards) < len(reference)
    assert main(["data", "build", *args, "--out", str(out)]) == 0
    assert shard_sums(read_manifest(out)) == reference


def interrupted_build(tmp_path: Path, tiny_vocab: Path, interrupt: Callable[[int], None]) -> tuple:
    """Start `wobert data build --workers 2` (in its own session) on a corpus that takes a few
    seconds, call ``interrupt(pid)`` once a shard is written and both workers run; returns the
    exit status, stderr and the build's arguments."""
    write_corpus(tmp_path / "corpus.txt", 3000, seed=6)
    out = tmp_path / "out"
    args = ["data", "build", "--corpus", str(tmp_path / "corpus.txt"), "--vocab", str(tiny_vocab),
            "--maxlen", "32", "--shard-chars", "3000", "--workers", "2", "--dupe-factor", "3",
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "wobert", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def started() -> bool:
        try:
            return bool(read_manifest(out).shards) and len(children(proc.pid)) == 2
        except (FileNotFoundError, ValueError):
            return False

    try:
        wait_until(started, proc, "a shard written with two workers")
        interrupt(proc.pid)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert not children(proc.pid)
    return proc.returncode, err, args


def test_a_killed_worker_ends_the_build_with_one_line_and_it_resumes(tmp_path, tiny_vocab):
    # as the out-of-memory killer would
    status, err, args = interrupted_build(tmp_path, tiny_vocab,
                                          lambda pid: os.kill(children(pid)[0], signal.SIGKILL))
    assert status == 2 and err.count("\n") == 1, err
    assert re.match(r"wobert data: error: worker process \d+ was killed by SIGKILL .*: the \d+ "
                    r"finished shards in .* are kept, run the same command again", err), err
    assert main(args) == 0 and read_manifest(tmp_path / "out").complete


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
                    reason="the suite was started with SIGINT ignored (in the background of a shell "
                    "without job control), which the build inherits, as a user's would: no Ctrl-C can reach it")
def test_ctrl_c_ends_the_build_quietly_with_status_130(tmp_path, tiny_vocab):
    # what Ctrl-C in a terminal does: SIGINT to the whole process group
    status, err, _ = interrupted_build(tmp_path, tiny_vocab, lambda pid: os.killpg(pid, signal.SIGINT))
    assert (status, err) == (130, "wobert data: interrupted\n")


def test_other_vocab_or_options_are_refused(tmp_path, tiny_vocab):
    write_corpus(tmp_path / "corpus.txt", 20)
    options = DataOptions(corpus=[str(tmp_path / "corpus.txt")], vocab=str(tiny_vocab), maxlen=32)
    build_records(options, tmp_path / "out", progress=False)
    with pytest.raises(UserError, match="maxlen 32 -> 64"):
        build_records(DataOptions(**{**options.__dict__, "maxlen": 64, "max_predictions": None}),
                      tmp_path / "out", progress=False)
    other_vocab = tmp_path / "vocab2"
    other_vocab.mkdir()
    (other_vocab / "vocab.txt").write_text((tiny_vocab / "vocab.txt").read_text(encoding="utf-8") + "新词\n",
                                           encoding="utf-8")
    with pytest.raises(UserError, match="another vocab.txt"):
        build_records(DataOptions(**{**options.__dict__, "vocab": str(other_vocab)}), tmp_path / "out",
                      progress=False)
    (tmp_path / "corpus.txt").write_text("另一个语料。\n", encoding="utf-8")
    with pytest.raises(UserError, match="other corpus files"):
        build_records(options, tmp_path / "out", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "shard-00000.tfrecord").write_bytes(b"")
    with pytest.raises(UserError, match="no manifest.json"):
        build_records(options, foreign, progress=False)


def test_bad_options_and_missing_inputs(tmp_path, tiny_vocab):
    with pytest.raises(UserError, match="dupe_factor must be 1"):
        DataOptions(dynamic=True, dupe_factor=2)
    with pytest.raises(UserError, match="masking"):
        DataOptions(masking="span")
    with pytest.raises(UserError, match="unknown key"):
        DataOptions.from_config({"maxlen": 8, "max_len": 9})
    with pytest.raises(FileNotFoundError, match="nothere"):
        build_records(DataOptions(corpus=[str(tmp_path / "nothere")], vocab=str(tiny_vocab)), tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(UserError, match="the corpus holds no text .*empty.txt: skipped 2 lines"):
        build_records(DataOptions(corpus=[str(tmp_path / "empty.txt")], vocab=str(tiny_vocab)),
                      tmp_path / "e", progress=False)
    assert not read_manifest(tmp_path / "e").complete


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_vocab) -> Path:
    root = tmp_path_factory.mktemp("built")
    write_corpus(root / "corpus.txt", 300, seed=7)
    options = DataOptions(corpus=[str(root / "corpus.txt")], vocab=str(tiny_vocab), maxlen=48, shard_chars=3000)
    build_records(options, root / "out", progress=False)
    return root / "out"


def first_batches(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_batches_shapes_and_buckets(built):
    manifest = read_manifest(built)
    batch = first_batches(make_dataset(built, 8), 1)[0]
    assert {k: (v.shape[1], v.dtype.name) for k, v in batch.items() if k.startswith("masked")} == {
        "masked_positions": (manifest.max_predictions, "int32"), "masked_ids": (manifest.max_predictions, "int32"),
        "masked_weights": (manifest.max_predictions, "float32")}
    assert batch["token_ids"].shape == batch["segment_ids"].shape and batch["token_ids"].dtype.name == "int32"
    assert batch["token_ids"].shape[1] == (batch["token_ids"] != 0).sum(1).max()  # padded to the longest
    assert not batch["segment_ids"].any()
    widths = {b["token_ids"].shape[1] for b in first_batches(make_dataset(built, 8, buckets=[16, 32]), 40)}
    assert widths <= {16, 32, 48} and len(widths) > 1


@pytest.fixture(scope="module")
def built_dynamic(tmp_path_factory, tiny_vocab) -> Path:
    root = tmp_path_factory.mktemp("built_dynamic")
    write_corpus(root / "corpus.txt", 300, seed=8)
    options = DataOptions(corpus=[str(root / "corpus.txt")], vocab=str(tiny_vocab), maxlen=48, shard_chars=3000,
                          masking="wwm", dynamic=True)
    build_records(options, root / "out", progress=False)
    return root / "out"


@pytest.mark.parametrize("buckets", [None, [16, 32]])
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_shuffle_is_a_function_of_the_seed_and_skip_resumes(request, kind, buckets):
    data = request.getfixturevalue("built" if kind == "static" else "built_dynamic")
    a = first_batches(make_dataset(data, 4, seed=1, buckets=buckets), 6)
    b = first_batches(make_dataset(data, 4, seed=1, buckets=buckets), 6)
    c = first_batches(make_dataset(data, 4, seed=2, buckets=buckets), 6)

    def same(x, y):
        return all(p[k].shape == q[k].shape and (p[k] == q[k]).all() for p, q in zip(x, y) for k in p)

    assert same(a, b) and not same(a, c)
    assert same(first_batches(make_dataset(data, 4, seed=1, buckets=buckets, skip_batches=4), 2), a[4:])


def test_input_pipelines_read_disjoint_parts(built):
    from wobert.backend import tf

    everything = sorted(tuple(r["token_ids"]) for r in read_records(built))
    parts = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline)
        parts.append(sorted(tuple(r["token_ids"]) for r in read_records(built, input_context=context)))
    assert parts[0] and parts[1] and sorted(parts[0] + parts[1]) == everything


def test_incomplete_records_are_refused(tmp_path, built):
    manifest = read_manifest(built)
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest.to_json(), "complete": False}), encoding="utf-8")
    with pytest.raises(ValueError, match="incomplete"):
        make_dataset(tmp_path, 4)


def damage(path: Path, how: str) -> None:
    """Cut a file to half its size, or flip one bit inside its first record's data."""
    with open(path, "r+b") as f:
        if how == "truncate":
            f.truncate(path.stat().st_size // 2)
        else:
            f.seek(40)
            byte = f.read(1)[0]
            f.seek(40)
            f.write(bytes([byte ^ 0x10]))


def test_damaged_shards_are_refused_by_name(tmp_path, built, capsys, caplog):
    from wobert.backend import tf

    assert main(["data", "verify", str(built)]) == 0
    assert "sizes, sha256 and record counts match the manifest" in capsys.readouterr().out
    cut, flipped = tmp_path / "cut", tmp_path / "flipped"
    for copy, how in ((cut, "truncate"), (flipped, "flip")):
        shutil.copytree(built, copy)
        damage(copy / "shard-00002.tfrecord", how)
    with pytest.raises(UserError, match=r"damaged records: shard-00002.tfrecord has [\d,]+ bytes, "
                                        r"the manifest [\d,]+\. The same `wobert data build` command"):
        make_dataset(cut, 4)  # a cut shard: refused at once, by its size
    with pytest.raises(tf.errors.DataLossError):  # a flipped bit: TensorFlow's record CRC
        read_records(flipped)
    assert main(["data", "verify", str(flipped)]) == 2
    assert "shard-00002.tfrecord differs from its sha256 in the manifest" in capsys.readouterr().err
    assert main(["data", "verify", str(cut)]) == 2
    assert "shard-00002.tfrecord has" in capsys.readouterr().err
    manifest = read_manifest(built)
    manifest.shards[1].sequences += 1
    (flipped / "manifest.json").write_text(json.dumps(manifest.to_json()), encoding="utf-8")
    shutil.copyfile(built / "shard-00002.tfrecord", flipped / "shard-00002.tfrecord")
    assert main(["data", "verify", str(flipped)]) == 2
    assert "shard-00001.tfrecord holds" in capsys.readouterr().err
    assert main(["data", "verify", str(tmp_path)]) == 2
    assert "manifest.json not found" in capsys.readouterr().err
    shutil.rmtree(cut / "vocab")
    shutil.copyfile(built / "shard-00002.tfrecord", cut / "shard-00002.tfrecord")
    with caplog.at_level(logging.WARNING, "wobert"):
        assert main(["data", "verify", str(cut)]) == 0
    assert f"{cut}/vocab/vocab.txt is missing: pretraining will read --vocab, else " in caplog.text


# ---------------------------------------------------------------------------------------
# Command line and job config
# ---------------------------------------------------------------------------------------


def test_build_data_script_with_the_job_config(tmp_path, tiny_vocab, capsys):
    data = tmp_path / "data"
    (data / "corpus").mkdir(parents=True)
    write_corpus(data / "corpus" / "a.txt", 30)
    (data / "corpus" / "b.txt").write_bytes(b"\xff\xfe broken\n" + "好的。\n".encode())
    config = json.loads((REPO / "pretrain" / "data.json").read_text(encoding="utf-8"))
    assert config["corpus"] == ["corpus"]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({**config, "maxlen": 32, "workers": 1}), encoding="utf-8")
    result = subprocess.run([sys.executable, "pretrain/build_data.py", str(job), "--data", str(data),
                             "--out", str(tmp_path / "out"), "--vocab", str(tiny_vocab)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 lines: 1 empty, 1 not UTF-8 (" in result.stdout and "b.txt:1)" in result.stdout
    manifest = read_manifest(tmp_path / "out")
    assert manifest.maxlen == 32 and manifest.dupe_factor == config["dupe_factor"]
    assert [Path(i.path).name for i in manifest.inputs] == ["a.txt", "b.txt"]
    with pytest.raises(SystemExit, match="2"):
        main(["data", "build", "--out", str(tmp_path / "x"), "--corpus", str(data), "--vocab",
              str(tiny_vocab), "--maxlen", "2"])
    assert "argument --maxlen: must be >= 3, not 2" in capsys.readouterr().err
