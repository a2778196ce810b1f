"""A fused pass's logits are handed to each view by split, not indexing: the same values and gradients,
without a zero-filled copy of the pass's logits per view in the backward pass."""
import torch

from safeeraser.train.step import _by_view


def test_split_views_give_indexing_s_values_and_gradients():
    torch.manual_seed(0)
    rows_of = {"forget": slice(0, 4), "retain": slice(4, 8), "pd": slice(8, 12)}
    weights = {"forget": -1.0, "retain": 0.5, "pd": 0.5}
    logits = torch.randn(12, 9, 30)
    grads, values = [], []
    for split in (False, True):
        x = logits.clone().requires_grad_(True)
        parts = _by_view(x, rows_of) if split else {n: x[rows] for n, rows in rows_of.items()}
        loss = sum(w * torch.log_softmax(parts[n], -1)[..., 3].mean() for n, w in weights.items())
        loss.backward()
        values.append({n: parts[n].detach() for n in parts})
        grads.append(x.grad)
    assert all(torch.equal(values[0][n], values[1][n]) for n in rows_of)
    assert torch.equal(grads[0], grads[1])


def test_a_pass_of_one_view_is_its_whole_output():
    x = torch.randn(3, 4, 5)
    assert _by_view(x, {"target": slice(None)})["target"] is x
