"""A training example longer than the model's positions is warned of, once, naming the file, the record
and the view (inference skips such a record with its own warning)."""
from __future__ import annotations

import logging

from safeeraser.models.families import family_for
from safeeraser.models.loading import load_processor
from safeeraser.train.methods import parse_method


def test_a_record_beyond_the_models_positions_is_warned_of_once(forget_cfg, vanilla_dir, monkeypatch, caplog):
    import safeeraser.train.loop as loop

    cfg = forget_cfg("forget_loss=gdpd")
    assert loop.max_positions(cfg.model.model_path) > 100  # the tiny model's own, read from its config
    monkeypatch.setattr(loop, "max_positions", lambda path: 40)
    dataset = loop.build_dataset(cfg, parse_method("gdpd"), load_processor(str(vanilla_dir)), family_for("llava"))
    with caplog.at_level(logging.WARNING, logger="safeeraser.train.dataset"):
        dataset[0]
        dataset[0]  # once per example, not per epoch
    lines = [r.getMessage() for r in caplog.records]
    forget = [line for line in lines if "record 0, unsafe_pairs[0], view 'forget'" in line]
    assert len(forget) == 1 and str(cfg.data.data_path) in forget[0]
    assert "beyond the model's 40 positions" in forget[0] and "set max_length" in forget[0]
    assert {line.split("view ")[1].split(":")[0] for line in lines} == {"'forget'", "'retain'", "'pd'"}
