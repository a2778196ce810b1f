"""Peak memory of one configuration, measured inside the fresh process that runs it.

On a CPU tracemalloc does not see torch's allocations, so the process's resident set is sampled in a
thread (psutil) and checked against `ru_maxrss`; the figure reported is the peak above the resident
set right after the imports (the model, its copies, optimizer state, activations, caches).
On CUDA it is `torch.cuda.max_memory_allocated`.
"""
from __future__ import annotations

import resource
import sys
import threading

MB = 1024 * 1024


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _maxrss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class PeakMemory:
    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.baseline = _rss()
        self.peak = self.baseline
        self._maxrss_at_start = _maxrss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cuda_base = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> "PeakMemory":
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
            self._cuda_base = torch.cuda.memory_allocated()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        if _maxrss() > self._maxrss_at_start:  # a new lifetime peak was set after the baseline
            self.peak = max(self.peak, _maxrss())

    def result(self) -> dict:
        out = {"baseline_rss_mb": self.baseline / MB, "peak_rss_mb": self.peak / MB,
               "peak_rss_delta_mb": (self.peak - self.baseline) / MB}
        if self.device == "cuda":
            import torch

            out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / MB
            out["cuda_peak_delta_mb"] = (torch.cuda.max_memory_allocated() - self._cuda_base) / MB
        # The figure the table shows: device memory on CUDA, resident memory above the baseline on a CPU.
        out["peak_mb"] = out["cuda_peak_delta_mb"] if self.device == "cuda" else out["peak_rss_delta_mb"]
        return out
