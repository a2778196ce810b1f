"""The pgd attack's cost per image on the bench's model: `steps` signed-gradient steps on each of the first
`images` harmful val images (all of an image's harmful pairs in one batch), timed, with the peak memory
(on a GPU, the allocator's peak above the loaded model: the model is not copied, gradients reach only the
pixels). The reference has no attacks: there is nothing to compare with."""
from __future__ import annotations

import time

from safeeraser.attacks.pgd import PGD, Objective, descend, read_pixels
from safeeraser.bench.assets import load_model
from safeeraser.attacks.base import absolute
from safeeraser.data.records import load_benchmark


def measure_pgd(assets, images: int, steps: int, seed: int = 0) -> dict:
    import torch

    from safeeraser.models.loading import load_processor

    records = [absolute(r) for r in load_benchmark(assets.val_file)[:images]]
    model = load_model(assets, seed=seed).eval().requires_grad_(False)
    objective = Objective(model, load_processor(assets.processor_path))
    opts = PGD().check_options({"steps": steps})
    cuda = assets.device == "cuda"

    def one(record):
        clean = read_pixels(record["image_path"]).to(objective.device)
        return descend(objective, [clean], [objective.examples([record])], lambda d, _: d, torch.zeros_like(clean), opts)

    one(records[0])  # warm-up: first calls, the processor's caches
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    for record in records:
        one(record)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"images": len(records), "steps": steps, "forward_backward_per_image": steps, "forward_only_per_image": 1,
            "pairs_per_image": sum(len(r["unsafe_pairs"]) for r in records) / len(records),
            "seconds_per_image": seconds / len(records),
            "peak_mb_above_model": (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else None}
