"""``wobert export``: options here, the conversion in :mod:`wobert.export` (TensorFlow, torch)."""
from __future__ import annotations

import argparse

from wobert.checks import output_dir
from wobert.errors import UserError

FORMATS = ("hf", "onnx")


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Export a model directory (a `wobert pretrain` export, a `wobert finetune --save-model` "
        "classifier, any Google-layout or Hugging Face BERT) for transformers (--format hf: "
        "config.json, model.safetensors, tokenizer files; a word model's tokenizer loads with "
        "AutoTokenizer.from_pretrained(OUT, trust_remote_code=True)) or for ONNX Runtime "
        "(--format onnx: model.onnx with dynamic batch and sequence axes, and the tokenizer files).")
    parser.add_argument("--model", required=True, help="model directory to export")
    parser.add_argument("--format", required=True, choices=FORMATS, help="hf or onnx")
    parser.add_argument("--out", required=True, type=output_dir, help="output directory (replaced)")


def run_cli(args: argparse.Namespace) -> int:
    from wobert.export import export_hf, export_onnx

    export = export_hf if args.format == "hf" else export_onnx
    try:
        out = export(args.model, args.out)
    except ImportError as err:  # transformers or torch missing
        raise UserError(str(err)) from None
    print(f"{args.model} -> {out} ({args.format})")
    return 0
