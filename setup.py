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
    # jieba's cut and the word tokenizer's ids, in C (needs a C compiler to install)
    ext_modules=[Extension("wobert._wordcut", ["wobert/_wordcut.c"])],
    python_requires=">=3.10,<3.12",
    install_requires=[
        "tensorflow-cpu==2.21.*",
        "tf-keras==2.21.*",
        "jieba>=0.42",
        "tokenizers>=0.15",
        "numpy>=1.23",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "snownlp>=0.12",
    ],
    # bert4keras==0.11.5 is installed by `make setup` with `pip install --no-deps`:
    # its metadata pins keras<=2.3.1, which conflicts with the stack above.
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["wobert = wobert.cli:main"]},
)
