"""The benchmarks' minis, each written once per test session (seed 0, the generator's own sizes) and read by
every module that needs it: the readers, the tasks, training on them."""
from __future__ import annotations

import pytest

from safeeraser.benchmarks import benchmark_for


@pytest.fixture(scope="session")
def benchmark_mini(tmp_path_factory):
    """benchmark_mini(name) -> the folder of that benchmark's mini, in its released layout (read only: a test
    that changes a file copies the mini first)."""
    made = {}

    def get(name: str):
        if name not in made:
            made[name] = benchmark_for(name).make_mini(tmp_path_factory.mktemp(name), seed=0)
        return made[name]

    return get
