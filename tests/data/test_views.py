import random

from safeeraser.data.records import load_benchmark
from safeeraser.data.views import forget_items, load_refusals


def test_each_forget_item_carries_its_own_pd(mini_dir):
    recs = load_benchmark(mini_dir / "all_train.json")
    items = forget_items(recs)
    assert len(items) == sum(len(r.unsafe_pairs) for r in recs)
    for it in items:
        rec = recs[it.record]
        pair = rec.unsafe_pairs[it.pair]
        assert it.pd.image == rec.sd_image and it.pd.question == pair["question"]
        assert it.pd.answer == pair["sd_response"] and it.forget.answer == pair["model_response"]
        retain = it.view("retain", random.Random(0), [])
        assert retain.image == rec.image
        assert retain.answer in {p["Prediction"] for _, p in rec.unharm_pairs()}


def test_idk_view_uses_refusals(mini_dir):
    items = forget_items(load_benchmark(mini_dir / "all_train.json"))
    refusals = load_refusals(mini_dir / "prompt.json")
    ex = items[0].view("idk", random.Random(1), refusals)
    assert ex.answer in refusals and ex.question == items[0].forget.question
