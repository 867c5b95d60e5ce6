"""Hugging Face and ONNX: the transformers word tokenizer, exports and imports, ONNX Runtime,
and the tokenizer without TensorFlow. Tiny models built or finetuned here; the hub is offline."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the [hf] extra (torch, transformers, onnx) is not installed")
transformers = pytest.importorskip("transformers", reason="the [hf] extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the [hf] extra is not installed")

from synthetic_pretrain import SyntheticMLM, write_vocab  # noqa: E402
from test_finetune import make_model_dir, synthetic_task  # noqa: E402
from test_model import word_vocab  # noqa: E402
from test_tokenizer import HARD_TEXTS, exactness_texts, exactness_vocab  # noqa: E402
from tokenizers import Tokenizer as JsonTokenizer  # noqa: E402
from transformers import AutoTokenizer, BertForMaskedLM, BertForSequenceClassification, BertModel  # noqa: E402

from wobert.backend import build_bert, set_seed  # noqa: E402
from wobert.classifier import load_classifier  # noqa: E402
from wobert.cli import main  # noqa: E402
from wobert.export import export_hf, save_hf_tokenizer  # noqa: E402
from wobert.finetune import build_classifier, load_pretrained  # noqa: E402
from wobert.hf import WoBertTokenizer  # noqa: E402
from wobert.layouts import read_hf_checkpoint  # noqa: E402
from wobert.model import build_mlm_model, export_bert, read_vocabulary  # noqa: E402
from wobert.pretrain import PretrainConfig, train  # noqa: E402
from wobert.tokenizer import SPECIAL_TOKENS, CharTokenizer, Tokenizer, load_tokenizer  # noqa: E402
from wobert.tokenizer_json import GUARD_MESSAGE, guard_tokenizer_json, write_guard  # noqa: E402

CHARS = "这个东西真的非常我觉得还是有点好坏今天天气不错北京是中国首都公园散步吧自然语言处理，。！,!"
WORDS = ["东西", "真的", "非常", "觉得", "还是", "有点", "今天", "天气", "不错", "北京", "中国", "首都",
         "公园", "散步", "自然语言", "处理", "真的好", "hello", "world", "cafe", "##s"]
TEXTS = ["我觉得这个东西真的好", "今天天气不错，我们去公园散步吧！", "北京是中国的首都", "Hello worlds, café!",
         "自然语言处理", "", "  ", "好" * 40]
PAIRS = ["东西还是有点坏", "北京", "天气真的非常不错", "中国首都", "", "处理", "x", "坏" * 7]
MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """A word tokenizer on a small vocabulary, with a user word jieba must cut whole."""
    vocab = {t: i for i, t in enumerate(dict.fromkeys(list(SPECIAL_TOKENS) + list(CHARS) + WORDS))}
    return Tokenizer(vocab, user_words=[("真的好", 50)])


@pytest.fixture(scope="module")
def word_model(tmp_path_factory, tokenizer):
    """A tiny word model in the Google layout (word embeddings scaled up, so the MLM
    distribution is far from uniform) and its Hugging Face export made by the CLI."""
    root = tmp_path_factory.mktemp("word")
    vocab = read_vocabulary(tokenizer.save(root / "vocab"))
    set_seed(1)
    mlm = build_mlm_model(dict(MODEL, vocab_size=vocab.size))
    embedding = mlm.transformer.layers["Embedding-Token"]
    embedding.set_weights([embedding.get_weights()[0] * 40])
    export_bert(mlm, root / "google", vocab)
    assert main(["export", "--model", str(root / "google"), "--format", "hf", "--out", str(root / "hf")]) == 0
    return mlm, root / "google", root / "hf"


def reference_ids(ours: Tokenizer, maxlen: int | None = None, pairs: list[str] | None = None):
    return [list(map(list, e)) for e in ours.encode_batch(TEXTS, pairs, maxlen=maxlen)]


def test_autotokenizer_gives_the_word_tokenizer_ids_also_saved_again_and_pickled(word_model, tokenizer, tmp_path):
    hf_dir = word_model[2]
    assert sorted(os.listdir(hf_dir)) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenization_wobert.py",
        "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    loaded = AutoTokenizer.from_pretrained(hf_dir, trust_remote_code=True)
    assert isinstance(loaded, WoBertTokenizer) and loaded.model_max_length == 64
    loaded.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "tokenization_wobert.py").is_file()
    (tmp_path / "a_file").write_text("kept")
    assert loaded.save_pretrained(tmp_path / "a_file") is None  # as transformers' own tokenizers
    assert (tmp_path / "a_file").read_text() == "kept"
    again = AutoTokenizer.from_pretrained(tmp_path / "again", trust_remote_code=True)
    pickled = pickle.loads(pickle.dumps(again))
    for tok in (loaded, again, pickled):
        assert tok.wobert_tokenizer.user_words == [("真的好", 50)]
        assert [tok(text)["input_ids"] for text in TEXTS] == [ids for ids, _ in reference_ids(tokenizer)]
        assert tok(TEXTS)["input_ids"] == [ids for ids, _ in reference_ids(tokenizer)]
        for maxlen in (5, 9, 64):
            encoded = tok(TEXTS, PAIRS, truncation=True, max_length=maxlen)
            assert list(zip(encoded["input_ids"], encoded["token_type_ids"])) == [
                tuple(e) for e in reference_ids(tokenizer, maxlen, PAIRS)]
        assert [tok.convert_tokens_to_ids(tok.tokenize(t)) for t in TEXTS] == [
            ids[1:-1] for ids, _ in reference_ids(tokenizer)]
    assert tokenizer.encode("我觉得这个东西真的好")[0][-2] == tokenizer.token_to_id("真的好")


def test_tokenizer_pads_returns_tensors_offsets_and_special_tokens(word_model, tokenizer):
    tok = AutoTokenizer.from_pretrained(word_model[2], trust_remote_code=True)
    batch = tok(TEXTS[:4], PAIRS[:4], padding="max_length", max_length=24, truncation=True,
                return_tensors="pt", return_special_tokens_mask=True, return_offsets_mapping=True)
    assert batch["input_ids"].shape == batch["offset_mapping"].shape[:2] == (4, 24)
    ids, types = tokenizer.encode(TEXTS[1], PAIRS[1], maxlen=24)
    assert batch["input_ids"][1, :len(ids)].tolist() == ids and batch["input_ids"][1, len(ids):].eq(0).all()
    assert batch["token_type_ids"][1, :len(ids)].tolist() == types
    assert batch["attention_mask"][1].sum() == len(ids)
    special = [i for i, t in enumerate(ids) if t in (tok.cls_token_id, tok.sep_token_id)]
    assert batch["special_tokens_mask"][1, :len(ids)].nonzero().flatten().tolist() == special
    left = tok(TEXTS[:2], padding=True, padding_side="left", return_tensors="np", return_offsets_mapping=True)
    assert left["input_ids"][0, 0] == 0 and left["attention_mask"][0, 0] == 0  # the shorter text
    assert left["input_ids"][0, -1] == tok.sep_token_id and tuple(left["offset_mapping"][0, 0]) == (0, 0)
    text = "Hello worlds, café!"
    single = tok(text, return_offsets_mapping=True)
    tokens = tok.convert_ids_to_tokens(single["input_ids"])
    assert tokens == ["[CLS]", "hello", "world", "##s", ",", "cafe", "!", "[SEP]"]
    assert [text[a:b] for a, b in single["offset_mapping"]] == ["", "Hello", "world", "s", ",", "café", "!", ""]
    masked = tok("今天天气[MASK]好")
    assert masked["input_ids"].count(tok.mask_token_id) == 1  # transformers' way: [MASK] stays whole
    assert tok("今天天气[MASK]好", split_special_tokens=True)["input_ids"] == tokenizer.encode("今天天气[MASK]好")[0]
    assert tok.decode(tok(TEXTS[1])["input_ids"], skip_special_tokens=True) == tokenizer.decode(
        tokenizer.encode(TEXTS[1])[0])


def test_without_remote_code_transformers_refuses_the_word_export(word_model):
    for trust in (False, None):
        with pytest.raises(Exception, match=r"trust_remote_code=True"):
            AutoTokenizer.from_pretrained(word_model[2], trust_remote_code=trust)
    with pytest.raises(Exception, match=r"WoBERT word tokenizer: load it with"):
        transformers.BertTokenizer.from_pretrained(word_model[2])
    assert GUARD_MESSAGE.startswith("WoBERT word tokenizer")


def test_the_guard_is_checked_after_writing(tmp_path, monkeypatch):
    """The guard is refused by the tokenizers library with its message, or writing it fails."""
    with pytest.raises(Exception, match="WoBERT word tokenizer: load it with"):
        JsonTokenizer.from_file(str(write_guard(tmp_path)))
    readable = dict(guard_tokenizer_json(), truncation=None)
    monkeypatch.setattr("wobert.tokenizer_json.guard_tokenizer_json", lambda: readable)
    with pytest.raises(RuntimeError, match="reads the guard"):
        write_guard(tmp_path)


def _char_export_ids_differ(directory, ours: CharTokenizer, texts: list[str]) -> list[str]:
    """The texts (and pairs of them) whose ids from the directory's tokenizer.json, read by the
    tokenizers library and by AutoTokenizer, differ from ``ours``."""
    from_file = JsonTokenizer.from_file(str(directory / "tokenizer.json"))
    fast = AutoTokenizer.from_pretrained(directory)
    expected = ours.encode_batch(texts)
    by_file = from_file.encode_batch(texts)
    by_fast = fast(texts)["input_ids"]
    wrong = [t for t, e, a, b in zip(texts, expected, by_file, by_fast) if not e[0] == a.ids == b]
    pairs = list(zip(texts[::7], texts[1::7]))  # untruncated: transformers' longest_first is not bert4keras's
    encoded = fast([a for a, _ in pairs], [b for _, b in pairs])
    got = list(zip(encoded["input_ids"], encoded["token_type_ids"]))
    return wrong + [a for (a, b), g in zip(pairs, got) if g != tuple(map(list, ours.encode(a, b)))]


def test_char_export_tokenizer_json_gives_the_char_tokenizer_ids(tmp_path):
    """BERT's fast tokenizer of a char export (tokenizers' Tokenizer.from_file, and AutoTokenizer
    without remote code): ids equal wobert's on real text (the shared data's, else the embedded
    text), hard texts, and every BMP character alone and between letters."""
    vocab = exactness_vocab()
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    hard = [t for t in HARD_TEXTS if "Σ" not in t]  # final sigma: see wobert.tokenizer_json
    texts = list(exactness_texts()) + hard + chars + [f"a{c}b" for c in chars]
    for lower in (True, False):
        ours = CharTokenizer(vocab, do_lower_case=lower)
        directory = tmp_path / f"lower-{lower}"
        directory.mkdir()
        save_hf_tokenizer(ours, directory, 512)
        wrong = _char_export_ids_differ(directory, ours, texts)
        assert not wrong, f"{len(wrong)} texts, e.g. {wrong[:5]!r}"
        assert isinstance(AutoTokenizer.from_pretrained(directory), transformers.PreTrainedTokenizerFast)
        assert load_tokenizer(directory).do_lower_case is lower


def test_char_model_export_has_the_fast_tokenizer(hf_char_model, tmp_path):
    hf_dir = export_hf(hf_char_model, tmp_path / "hf")
    assert sorted(os.listdir(hf_dir)) == ["config.json", "model.safetensors", "special_tokens_map.json",
                                          "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    ours = load_tokenizer(hf_dir)
    fast = AutoTokenizer.from_pretrained(hf_dir)
    assert fast(TEXTS, PAIRS, padding=True)["input_ids"][0][:3] == ours.encode(TEXTS[0], PAIRS[0])[0][:3]
    assert [fast(t)["input_ids"] for t in TEXTS] == [ours.encode(t)[0] for t in TEXTS]
    assert fast.mask_token_id == ours.mask_id and fast.pad_token_id == ours.pad_id and fast.model_max_length == 64


def test_wobert_reads_the_same_tokenizer_config(word_model, tokenizer):
    config = json.loads((word_model[2] / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["level"] == "word" and config["tokenizer_class"] == "WoBertTokenizer"
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_wobert.WoBertTokenizer"
    for ours in (Tokenizer.load(word_model[2]), load_tokenizer(word_model[2])):
        assert ours.user_words == tokenizer.user_words
        assert ours.encode_batch(TEXTS, PAIRS) == tokenizer.encode_batch(TEXTS, PAIRS)


def test_ids_equal_on_a_sample_of_the_shared_corpus_and_clue(shared_data, wobert_vocab, tmp_path):
    """Every line of the corpus and all of CLUE: `make bench-hf`."""
    from wobert.tasks import TASKS, load_task

    Tokenizer(wobert_vocab).save(tmp_path)
    WoBertTokenizer.from_pretrained(tmp_path).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)
    ours = Tokenizer.load(tmp_path)
    texts = []
    for path in sorted((shared_data / "corpus").rglob("*.txt")):
        with open(path, encoding="utf-8") as f:
            texts += [next(f).rstrip("\n") for _ in range(100)]
    for task in ("tnews", "iflytek", "ocnli"):
        dev = load_task(TASKS[task], shared_data).dev
        texts += dev.texts()[:300]
        pairs = dev.pairs()
        if pairs:
            first, second = dev.texts()[:300], pairs[:300]
            encoded = tok(first, second, truncation=True, max_length=64)
            assert list(zip(encoded["input_ids"], encoded["token_type_ids"])) == [
                tuple(map(list, e)) for e in ours.encode_batch(first, second, maxlen=64)]
    assert tok(texts)["input_ids"] == [ids for ids, _ in ours.encode_batch(texts)]


def test_mlm_probabilities_and_pooled_output_equal_bert4keras(word_model):
    mlm, google, hf_dir = word_model
    tok = AutoTokenizer.from_pretrained(hf_dir, trust_remote_code=True)
    batch = tok(TEXTS, PAIRS, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(BertForMaskedLM.from_pretrained(hf_dir).eval()(**batch).logits, -1).numpy()
        pooled = BertModel.from_pretrained(hf_dir).eval()(**batch).pooler_output.numpy()
    inputs = [batch["input_ids"].numpy(), batch["token_type_ids"].numpy()]
    _, ours = mlm.transformer.model.predict(inputs, verbose=0)
    real = batch["attention_mask"].numpy().astype(bool)  # bert4keras masks padding the same way
    assert probs[real].max() > 0.5
    np.testing.assert_allclose(probs[real], ours[real], atol=1e-5)
    bert = build_bert(dict(MODEL, vocab_size=tok.vocab_size), str(google / "bert_model.ckpt"), with_pool=True)
    np.testing.assert_allclose(pooled, bert.model.predict(inputs, verbose=0), atol=1e-5)
    onnx_dir = hf_dir.parent / "onnx"
    assert main(["export", "--model", str(google), "--format", "onnx", "--out", str(onnx_dir)]) == 0
    other = tok(TEXTS[:3], padding=True, return_tensors="np")  # another batch and sequence size
    logits = ort.InferenceSession(str(onnx_dir / "model.onnx")).run(None, {k: other[k] for k in MODEL_INPUTS})[0]
    with torch.no_grad():
        theirs = BertForMaskedLM.from_pretrained(hf_dir).eval()(
            **{k: torch.from_numpy(other[k]) for k in MODEL_INPUTS}).logits.numpy()
    np.testing.assert_allclose(logits, theirs, atol=1e-4)


def test_finetuned_classifier_exports_to_transformers_and_onnx_with_its_predictions(tmp_path, tokenizer):
    paths = synthetic_task(tmp_path, n=64)
    model_dir = make_model_dir(tmp_path / "word", tokenizer, dict(MODEL, hidden_size=48, num_attention_heads=2))
    run = tmp_path / "run"
    assert main(["finetune", "--model", str(model_dir), "--out", str(run), "--train", str(paths["train"]),
                 "--dev", str(paths["dev"]), "--text-field", "review", "--label-field", "polarity",
                 "--epochs", "1", "--batch-size", "16", "--maxlen", "16", "--lr", "1e-3",
                 "--save-model"]) == 0
    assert json.loads((run / "result.json").read_text())["saved_model"] == str(run / "model")
    hf_dir, onnx_dir = tmp_path / "hf", tmp_path / "onnx"
    assert main(["export", "--model", str(run / "model"), "--format", "hf", "--out", str(hf_dir)]) == 0
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["label2id"] == {"neg": 0, "pos": 1}
    dev = [json.loads(line)["review"] for line in paths["dev"].read_text(encoding="utf-8").splitlines()]
    classifier, model, _ = load_classifier(run / "model")
    ids = [i for i, _ in model.tokenizer.encode_batch(dev, maxlen=16)]
    tokens = np.array([i + [0] * (max(map(len, ids)) - len(i)) for i in ids])
    ours = classifier.predict([tokens, np.zeros_like(tokens)], verbose=0)
    tok = AutoTokenizer.from_pretrained(hf_dir, trust_remote_code=True)
    batch = tok(dev, padding=True, truncation=True, max_length=16, return_tensors="pt")
    hf_model = BertForSequenceClassification.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        logits = hf_model(**batch).logits.numpy()
    assert (logits.argmax(-1) == ours.argmax(-1)).all()
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), -1).numpy(), ours, atol=1e-5)
    assert main(["export", "--model", str(hf_dir), "--format", "onnx", "--out", str(onnx_dir)]) == 0
    half = tok(dev[:7], padding=True, return_tensors="pt")  # another batch and sequence size
    with torch.no_grad():
        expected = hf_model(**half).logits.numpy()
    session = ort.InferenceSession(str(onnx_dir / "model.onnx"))
    out = session.run(None, {k: half[k].numpy() for k in MODEL_INPUTS})[0]
    np.testing.assert_allclose(out, expected, atol=1e-4)
    info = json.loads((run / "model" / "classifier.json").read_text())
    (run / "model" / "classifier.json").write_text(json.dumps(dict(info, pooling="cls")))
    assert main(["export", "--model", str(run / "model"), "--format", "hf", "--out", str(tmp_path / "x")]) == 2


@pytest.fixture(scope="module")
def hf_char_model(tmp_path_factory):
    """A char BERT saved by transformers (BertForPreTraining: pooler, MLM and NSP heads)."""
    out = tmp_path_factory.mktemp("hf-char")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertForPreTraining(config).save_pretrained(out)
    write_vocab(out, 30)
    return out


def test_hf_to_wobert_to_hf_is_bit_identical_and_pytorch_bin_reads(hf_char_model, tmp_path):
    from safetensors.numpy import load_file

    config, weights = read_hf_checkpoint(hf_char_model)
    google = export_bert(build_mlm_model(config, weights), tmp_path / "google", read_vocabulary(hf_char_model))
    assert main(["export", "--model", str(google), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    source, back = load_file(hf_char_model / "model.safetensors"), load_file(tmp_path / "hf" / "model.safetensors")
    assert sorted(back) == sorted(k for k in source if not k.startswith("cls.seq_relationship"))  # NSP: not trained
    for name, value in back.items():
        assert np.array_equal(value, source[name]), name
    state = transformers.BertForPreTraining.from_pretrained(hf_char_model).state_dict()
    (tmp_path / "bin").mkdir()
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    for name in ("config.json", "vocab.txt"):
        (tmp_path / "bin" / name).write_bytes((hf_char_model / name).read_bytes())
    _, from_bin = read_hf_checkpoint(tmp_path / "bin")
    assert sorted(from_bin) == sorted(weights)
    assert all(np.array_equal(from_bin[k], v) for k, v in weights.items())
    model = load_pretrained(hf_char_model)  # `wobert finetune --model DIR`
    embedding = build_classifier(model, 3).get_layer("Embedding-Token").get_weights()[0]
    np.testing.assert_array_equal(embedding, source["bert.embeddings.word_embeddings.weight"])


def test_damaged_weights_fail_with_one_line_naming_the_file(word_model, tmp_path, capsys):
    _, google, hf = word_model

    def cut(source, name):
        copy = tmp_path / f"{source.name}-{name}"
        shutil.copytree(source, copy)
        (copy / name).write_bytes((copy / name).read_bytes()[:2000])
        return copy

    bad_google, bad_hf = cut(google, "bert_model.ckpt.data-00000-of-00001"), cut(hf, "model.safetensors")
    bin_dir = tmp_path / "bin"
    shutil.copytree(hf, bin_dir, ignore=shutil.ignore_patterns("*.safetensors"))
    (bin_dir / "pytorch_model.bin").write_bytes(b"")
    runs = [(["export", "--model", str(bad_google), "--format", "hf"], f"checkpoint {bad_google}/bert_model.ckpt"),
            (["export", "--model", str(bad_hf), "--format", "onnx"], f"{bad_hf}/model.safetensors"),
            (["export", "--model", str(bin_dir), "--format", "hf"], f"{bin_dir}/pytorch_model.bin"),
            (["finetune", "--model", str(bad_hf), "--train", "x.jsonl"], f"{bad_hf}/model.safetensors")]
    for args, name in runs:
        out = tmp_path / "out"
        assert main([*args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{name} is damaged (truncated or corrupted" in err, err
        assert not out.exists() and not out.with_name("out.tmp").exists(), args


def test_char_model_from_hf_initialises_a_word_model_like_the_google_layout(hf_char_model, tmp_path):
    config, weights = read_hf_checkpoint(hf_char_model)
    base = read_vocabulary(hf_char_model)
    google = export_bert(build_mlm_model(config, weights), tmp_path / "google", base)
    vocab = word_vocab(tmp_path / "words", base, list(range(30)), [[5, 6], [7, 8, 9]])
    losses = []
    for init in (hf_char_model, google):
        run = PretrainConfig(init=str(init), steps=1, batch_size=8, log_every=1, warmup_steps=0, seed=2)
        result = train(run, SyntheticMLM(vocab.size, vocab.sha256), tmp_path / f"run-{init.name}", vocab)
        losses.append(result["last"]["loss"])
    assert losses[0] == losses[1] and losses[0] > 0


BLOCK_TENSORFLOW = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "bert4keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
sys.meta_path.insert(0, Block())
from wobert import Tokenizer
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
ours = Tokenizer.load(sys.argv[1])
texts = json.loads(sys.argv[2])
assert tok(texts)["input_ids"] == [ids for ids, _ in ours.encode_batch(texts)]
print(json.dumps(tok(texts)["input_ids"]))
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("tensorflow", "keras", "bert4keras")))))
"""


def test_the_tokenizer_needs_no_tensorflow(word_model, tokenizer):
    result = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, str(word_model[2]), json.dumps(TEXTS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ids, modules = map(json.loads, result.stdout.strip().split("\n")[-2:])
    assert ids == [i for i, _ in reference_ids(tokenizer)] and modules == []
