from pathlib import Path

from setuptools import find_namespace_packages, setup

here = Path(__file__).parent
requirements = [line.strip() for line in (here / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

setup(
    name="safeeraser",
    version="0.1.0",
    description="SafeEraser: safety unlearning benchmark toolkit for multimodal LLMs",
    long_description=(here / "README.md").read_text(encoding="utf-8") if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Namespace packages, so the data folders (specificity fixtures) are declared packages too:
    # setuptools warns about every undeclared one, hundreds of lines per install.
    # The top-level config/ folder ships as the package safeeraser.config, so an install outside the
    # checkout finds the training, experiment, model and accelerate configs (safeeraser/train/config.py).
    packages=find_namespace_packages(include=["safeeraser", "safeeraser.*"], exclude=["*.__pycache__"])
    + ["safeeraser.config", *(f"safeeraser.config.{p}" for p in find_namespace_packages(str(here / "config")))],
    package_dir={"safeeraser.config": "config"},
    include_package_data=True,
    package_data={"safeeraser": ["**/*.json", "**/*.jsonl", "**/*.tsv", "**/*.png", "**/*.jpg", "**/*.yaml"],
                  "safeeraser.config": ["**/*.yaml", "**/*.json"]},
    install_requires=requirements,
    extras_require={
        "train": ["deepspeed>=0.15"],
        "vllm": ["vllm"],
        "flash": ["flash-attn"],
        "track": ["tensorboard>=2.21", "wandb>=0.30"],  # report_to=tensorboard|wandb
        "ray": ["ray>=2.60"],  # safeeraser run --launcher ray
        "slurm": ["submitit>=1.5"],  # safeeraser run --launcher slurm
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "tensorboard>=2.21", "wandb>=0.30", "ray>=2.60", "submitit>=1.5",
                "mkdocs>=1.6"],
    },
    entry_points={"console_scripts": ["safeeraser=safeeraser.cli:main"]},
)
