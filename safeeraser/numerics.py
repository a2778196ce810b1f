"""CPU numerics pinned to one code path, so that a run computes the same bits on any x86-64 CPU with AVX2.

torch's CPU kernels pick their code path by what the processor offers: ATen's vectorised kernels
(elementwise ops, reductions, softmax) dispatch to AVX-512 or AVX2 versions, oneDNN (convolutions, some
matmuls) to its widest instruction set, and MKL (matrix products) by vendor and instruction set. Each
path rounds differently in the last bits, and an unlearning run amplifies the last bit: the mini grid's
rows differed between an AVX2 and an AVX-512 machine in 22 of 22 method rows. Mode `avx2` caps all three
libraries at AVX2, which every such machine has. Measured on an AMD EPYC with AVX-512 (a 12-step gdpd run
of the tiny model, each lever alone; tests/test_numerics.py checks the pinned case): ATen's cap and oneDNN's
cap each change the trained adapter; MKL's cap changes nothing there (MKL runs its AVX2 kernels on AMD
processors anyway) but is what makes an Intel AVX-512 machine take the same kernels. The run took as long
pinned as native (5.9 against 6.1 s).

The libraries read these variables once, when they load or first run: `pin` must come before torch is
imported, and the processes a run starts inherit them. The thread count is the experiment's `threads`.
Light imports only.
"""
from __future__ import annotations

import os
import sys

from safeeraser.io import ConfigError

# mode -> the environment it sets
PINNED = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
}
MODES = ("native", *PINNED)
LEVERS = tuple(dict.fromkeys(k for env in PINNED.values() for k in env))


class NumericsError(RuntimeError):
    """Pinned numerics asked for in a process whose torch already runs with other settings."""


def check_mode(mode: str, where: str = "numerics") -> str:
    if mode not in MODES:
        raise ConfigError(f"key '{where}': one of {', '.join(MODES)}, got {mode!r}")
    return mode


def pin(mode: str) -> dict:
    """Set the mode's variables in this process's environment (every process it starts inherits them) and
    return them; `native` sets nothing. Raises NumericsError when torch is already loaded with other
    values: they would not take effect, and the run would compute other numbers than it claims."""
    check_mode(mode)
    if mode == "native":
        return {}
    wanted = PINNED[mode]
    if "torch" in sys.modules and any(os.environ.get(k) != v for k, v in wanted.items()):
        variables = " ".join(f"{k}={v}" for k, v in wanted.items())
        raise NumericsError(f"numerics '{mode}' must be set before torch is imported ({variables}): "
                            "run the command in a fresh process, or export these variables first")
    os.environ.update(wanted)
    return dict(wanted)


def current_mode() -> str:
    """The mode this process's environment is pinned to, or `native`."""
    return next((m for m, env in PINNED.items() if all(os.environ.get(k) == v for k, v in env.items())), "native")


def describe() -> dict:
    """What this process computes with, for provenance: the mode, each variable, and (when torch is
    loaded) the code path ATen dispatches to."""
    out = {"mode": current_mode(), **{k: os.environ.get(k) for k in LEVERS}}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["aten_capability"] = torch.backends.cpu.get_cpu_capability()
    return out


def passive_openmp_wait() -> None:
    """OpenMP threads that sleep between parallel regions instead of spinning, unless the user chose a policy.
    On a CPU with as many torch threads as cores, spinning threads wait on each other whenever anything else
    needs a core: beside one busy core, the 2-thread mini grid's fine-tune took 3.6x its idle time with the
    default policy, and the whole grid 1.06x with this one, which costs 1.34x at idle (README: Speed on a
    busy machine; OMP_WAIT_POLICY=ACTIVE for a dedicated machine). The arithmetic is the same. Must run
    before torch loads; the commands call it first."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
