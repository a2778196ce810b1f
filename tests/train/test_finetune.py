import json


def test_short_finetune_lowers_the_loss(vanilla_dir):
    rows = [json.loads(line) for line in (vanilla_dir / "log.jsonl").read_text().splitlines()]
    first = sum(r["loss/nll"] for r in rows[:3]) / 3
    last = sum(r["loss/nll"] for r in rows[-3:]) / 3
    assert last < 0.5 * first
    # a full fine-tune saves a complete model folder that loads like a hub model
    assert (vanilla_dir / "model.safetensors").exists() and (vanilla_dir / "tokenizer.json").exists()
    assert (vanilla_dir / "loss_curves.png").stat().st_size > 0
