"""Installable package for wobert, a Chinese word-level BERT pretraining pipeline."""
from setuptools import Extension, find_packages, setup

setup(
    name="wobert",
    version="0.1.0",
    description="Chinese word-level BERT: word tokenizer, vocabulary builder, "
    "MLM pretraining, CLUE finetuning and comparison",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["wobert", "wobert.*"]),
    # the budgets of `wobert demo`, found next to wobert/demo.py in any install
    package_data={"wobert": ["demo.json"]},
    # jieba's cut and the tokenizers' ids, tokens and word starts, in C (needs a C compiler to
    # install); warnings on: the build is clean under -Wall -Wextra
    ext_modules=[Extension("wobert._wordcut", ["wobert/_wordcut.c"],
                           extra_compile_args=["-Wall", "-Wextra"])],
    python_requires=">=3.10,<3.12",
    # The tokenizer alone (``from wobert import Tokenizer``, ``wobert.hf.WoBertTokenizer`` for
    # transformers): what serving a model needs, no TensorFlow.
    install_requires=[
        "jieba>=0.42",
        "numpy>=1.23",
        "tqdm>=4.60",
    ],
    extras_require={
        # the pipeline: vocabulary, records, pretraining, finetuning, comparison, demo.
        # bert4keras==0.11.5 is installed by `make setup` with `pip install --no-deps`:
        # its metadata pins keras<=2.3.1, which conflicts with this stack.
        "train": [
            "tensorflow-cpu==2.21.*",
            "tf-keras==2.21.*",
            "matplotlib>=3.6",
            "snownlp>=0.12",
            "safetensors>=0.4",  # Hugging Face checkpoints as --init/--model (numpy only)
            # writes and checks the tokenizer.json of `wobert export` (wobert.tokenizer_json);
            # the tokenizers themselves are wobert's C core
            "tokenizers>=0.15",
        ],
        # Hugging Face export and serving: transformers, PyTorch (CPU build; never unpinned,
        # a newer torch pulls a multi-GB CUDA build), ONNX export and ONNX Runtime.
        "hf": [
            "torch==2.13.0",
            "transformers>=5,<6",
            "safetensors>=0.4",
            "onnx>=1.16",
            "onnxscript>=0.2",
            "onnxruntime>=1.18",
        ],
        "test": ["pytest>=7", "pytest-xdist>=3"],
        # make lint: the versions whose rules ruff.toml and mypy.ini were written for
        "lint": ["ruff==0.17.6", "mypy==2.4.1"],
    },
    entry_points={"console_scripts": ["wobert = wobert.cli:main"]},
)
