"""Resuming mid-epoch with several processes: every process continues the epoch's own order.

accelerate's skipping loader does not pass set_epoch down to a custom sampler under the sharded
batch sampler, so without the loop's own set_epoch a resumed multi-process run would replay
epoch 0's order. Checked in one process by building each rank's sharded loader."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from accelerate.data_loader import prepare_data_loader, skip_first_batches
from torch.utils.data import DataLoader

from safeeraser.train.dataset import EpochSampler
from safeeraser.train.loop import loader_for_epoch

N, BATCH, SEED = 24, 2, 233


def _rank_loader(process_index: int, num_processes: int):
    sampler = EpochSampler(N, SEED)
    loader = DataLoader(list(range(N)), batch_size=BATCH, sampler=sampler)
    loader = prepare_data_loader(loader, num_processes=num_processes, process_index=process_index,
                                 put_on_device=False)
    return loader, sampler


@pytest.mark.parametrize("num_processes,process_index", [(1, 0), (2, 0), (2, 1)])
def test_resumed_epoch_continues_where_the_uninterrupted_one_was(num_processes, process_index):
    acc = SimpleNamespace(skip_first_batches=skip_first_batches)
    dataset = SimpleNamespace(set_epoch=lambda epoch: None)
    loader, sampler = _rank_loader(process_index, num_processes)
    full = [[b.tolist() for b in loader_for_epoch(acc, loader, sampler, dataset, epoch)] for epoch in range(2)]
    assert full[0] != full[1]  # the epochs shuffle differently
    fresh, fresh_sampler = _rank_loader(process_index, num_processes)  # a new process after the restart
    resumed = [b.tolist() for b in loader_for_epoch(acc, fresh, fresh_sampler, dataset, 1, skip_batches=2)]
    assert resumed == full[1][2:]
