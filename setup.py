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
    packages=find_namespace_packages(include=["safeeraser", "safeeraser.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    package_data={"safeeraser": ["**/*.json", "**/*.jsonl", "**/*.tsv", "**/*.png", "**/*.jpg", "**/*.yaml"]},
    install_requires=requirements,
    extras_require={
        "train": ["deepspeed>=0.15"],
        "vllm": ["vllm"],
        "flash": ["flash-attn"],
        "dev": ["pytest>=8"],
    },
    entry_points={"console_scripts": ["safeeraser=safeeraser.cli:main"]},
)
