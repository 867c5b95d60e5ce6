"""Exactness of the Hugging Face and ONNX exports on all the shared data, in one run.

1. Tokenizer: ``AutoTokenizer.from_pretrained(export, trust_remote_code=True)`` of a WoBERT
   vocabulary (bert-base-chinese simplified + 20,000 jieba words) against ``wobert.Tokenizer`` on
   every line of DATA/corpus, every CLUE sentence and every OCNLI pair (whole, and cut to 128
   tokens), also after ``save_pretrained`` + ``from_pretrained`` and after pickling: texts whose
   ids differ (target 0).
2. A word model (random weights, word embeddings scaled up so that the MLM distribution is far
   from uniform) exported to Hugging Face: MLM probabilities (BertForMaskedLM) and pooled
   outputs (BertModel) against bert4keras's on every CLUE dev sentence: max |difference|
   (target <= 1e-5).
3. A word TNEWS classifier finetuned here (tiny, from random weights, ``--save-model``), exported
   to Hugging Face and to ONNX: labels predicted on all of TNEWS dev by wobert (TensorFlow),
   transformers (tokenized by AutoTokenizer) and ONNX Runtime: differing labels (target 0), max
   |difference| of probabilities and logits.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no load reports (a pooler unused by MLM, ...)

from bench_serve import onnx_runner  # noqa: E402
from bench_tokenizer import load_texts, wobert_vocab  # noqa: E402

from wobert.backend import np, set_seed  # noqa: E402
from wobert.classifier import load_classifier  # noqa: E402
from wobert.export import ONNX_FILE, export_hf, export_onnx  # noqa: E402
from wobert.finetune import (  # noqa: E402
    FinetuneConfig,
    encode_split,
    encode_task,
    finetune,
    length_batches,
    load_pretrained,
    make_predict_fn,
    pad_batch,
    predict,
)
from wobert.model import build_mlm_model, export_bert, read_vocabulary  # noqa: E402
from wobert.tasks import TASKS, load_task  # noqa: E402
from wobert.tokenizer import Tokenizer  # noqa: E402

CHUNK = 8192
MODEL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
             hidden_act="gelu", max_position_embeddings=128, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def tokenizer_check(data: Path, vocab_dir: Path) -> None:
    """Part 1: mismatching texts per tokenizer variant and input kind."""
    from transformers import AutoTokenizer

    corpus, sentences, pairs = load_texts(data, None)
    ours = Tokenizer.load(vocab_dir)
    loaded = AutoTokenizer.from_pretrained(vocab_dir, trust_remote_code=True)
    loaded.save_pretrained(vocab_dir / "again")
    variants = {"AutoTokenizer": loaded,
                "save_pretrained + from_pretrained": AutoTokenizer.from_pretrained(vocab_dir / "again",
                                                                                   trust_remote_code=True),
                "pickled": pickle.loads(pickle.dumps(loaded))}
    firsts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
    inputs = {"corpus lines": (corpus, None, None), "CLUE sentences": (sentences, None, None),
              "OCNLI pairs": (firsts, seconds, None), "OCNLI pairs, maxlen 128": (firsts, seconds, 128)}
    print("| tokenizer | input | texts | ids differ | seconds |\n|---|---|---:|---:|---:|")
    for kind, (texts, second, maxlen) in inputs.items():
        expected = [tuple(map(list, e)) for e in ours.encode_batch(texts, second, maxlen=maxlen)]
        for name, tok in variants.items():
            start, bad = time.perf_counter(), 0
            for at in range(0, len(texts), CHUNK):
                got = tok(texts[at:at + CHUNK], None if second is None else second[at:at + CHUNK],
                          truncation=maxlen is not None, max_length=maxlen)
                bad += sum(e != g for e, g in zip(expected[at:], zip(got["input_ids"], got["token_type_ids"])))
            print(f"| {name} | {kind} | {len(texts)} | {bad} | {time.perf_counter() - start:.1f} |")


def mlm_check(data: Path, vocab_dir: Path, root: Path) -> None:
    """Part 2: transformers' MLM probabilities and pooled outputs vs bert4keras's."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM, BertModel

    vocab = read_vocabulary(vocab_dir)
    set_seed(0)
    mlm = build_mlm_model(dict(MODEL, vocab_size=vocab.size))
    embedding = mlm.transformer.layers["Embedding-Token"]
    embedding.set_weights([embedding.get_weights()[0] * 40])
    hf_dir = export_hf(export_bert(mlm, root / "mlm-google", vocab), root / "mlm-hf")
    tok = AutoTokenizer.from_pretrained(hf_dir, trust_remote_code=True)
    masked_lm, bert = (cls.from_pretrained(hf_dir).eval() for cls in (BertForMaskedLM, BertModel))
    texts = [t for task in ("tnews", "iflytek", "ocnli") for t in load_task(TASKS[task], data).dev.texts()]
    prob_diff = pooled_diff = top = 0.0
    for at in range(0, len(texts), 64):
        batch = tok(texts[at:at + 64], padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            probs = torch.softmax(masked_lm(**batch).logits, -1).numpy()
            pooled = bert(**batch).pooler_output.numpy()
        ours_pooled, ours_probs = mlm.transformer.model.predict_on_batch(
            [batch["input_ids"].numpy(), batch["token_type_ids"].numpy()])
        real = batch["attention_mask"].numpy().astype(bool)
        prob_diff = max(prob_diff, float(np.abs(probs[real] - np.asarray(ours_probs)[real]).max()))
        pooled_diff = max(pooled_diff, float(np.abs(pooled - np.asarray(ours_pooled)).max()))
        top += float(probs[real].max(-1).sum())
    positions = sum(len(ids) for ids in tok(texts, truncation=True, max_length=64)["input_ids"])
    print(f"\n{len(texts)} CLUE dev sentences ({positions} positions, vocab {vocab.size}); mean top "
          f"MLM probability {top / positions:.3f}\n")
    print(f"| output | max abs difference, transformers vs bert4keras | target |\n|---|---:|---:|\n"
          f"| MLM probabilities | {prob_diff:.2e} | 1e-5 |\n| pooled output | {pooled_diff:.2e} | 1e-5 |")


def classifier_check(data: Path, vocab_dir: Path, root: Path, max_train: int) -> None:
    """Part 3: a finetuned TNEWS classifier in wobert, transformers and ONNX Runtime."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    set_seed(0)
    vocab = read_vocabulary(vocab_dir)
    google = export_bert(build_mlm_model(dict(MODEL, vocab_size=vocab.size)), root / "word", vocab)
    task = load_task("tnews", data)
    config = FinetuneConfig(lr=3e-3, epochs=2, maxlen=64, max_train=max_train, predict_test=False,
                            save_model=True)  # from random weights a tiny BERT needs a large rate
    model = load_pretrained(google)
    result = finetune(model, task, encode_task(model.tokenizer, task, config), config, root / "run")
    classifier, model, info = load_classifier(result["saved_model"])
    dev = encode_split(model.tokenizer, task.dev, 64, task)
    ours = predict(make_predict_fn(classifier), dev, 128)[0]
    hf_dir = export_hf(result["saved_model"], root / "tnews-hf")
    onnx = onnx_runner(export_onnx(hf_dir, root / "tnews-onnx") / ONNX_FILE)
    tok = AutoTokenizer.from_pretrained(hf_dir, trust_remote_code=True)
    hf_model = BertForSequenceClassification.from_pretrained(hf_dir).eval()
    texts = task.dev.texts()
    logits = np.zeros((len(texts), len(info.labels)), np.float32)
    onnx_logits = np.zeros_like(logits)
    for index in length_batches(dev.lengths, 128):
        batch = tok([texts[i] for i in index], padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            logits[index] = hf_model(**batch).logits.numpy()
        onnx_logits[index] = onnx(pad_batch(dev.token_ids, index), pad_batch(dev.segment_ids, index))
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    print(f"\nTNEWS classifier (finetuned on {max_train} examples, dev accuracy "
          f"{result['dev_accuracy']:.4f}, majority class {result['majority_baseline']:.4f}; "
          f"{len(np.unique(ours.argmax(-1)))} labels predicted), all {len(texts)} dev examples:\n")
    print("| comparison | labels differ | max abs difference |\n|---|---:|---:|")
    print(f"| transformers vs wobert (probabilities) | {int((probs.argmax(-1) != ours.argmax(-1)).sum())} | "
          f"{np.abs(probs - ours).max():.2e} |")
    print(f"| ONNX Runtime vs transformers (logits) | {int((onnx_logits.argmax(-1) != logits.argmax(-1)).sum())} | "
          f"{np.abs(onnx_logits - logits).max():.2e} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="shared data directory")
    parser.add_argument("--max-train", type=int, default=10000, help="TNEWS training examples")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "bert-base-chinese" / "vocab.txt").is_file() or not (data / "clue" / "tnews").is_dir():
        print(f"bench_hf: bert-base-chinese/vocab.txt or clue/tnews under {data} is missing; "
              "nothing to check", file=sys.stderr)
        return 2
    from wobert.hf import WoBertTokenizer

    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        root = Path(tmp)
        vocab_dir = Tokenizer(wobert_vocab(data)).save(root / "vocab")
        WoBertTokenizer.from_pretrained(vocab_dir).save_pretrained(vocab_dir)
        tokenizer_check(data, vocab_dir)
        mlm_check(data, vocab_dir, root)
        classifier_check(data, vocab_dir, root, args.max_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
