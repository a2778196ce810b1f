"""Reference mode against the SafeEraser code's own numbers (tests/fixtures/reference_parity.json, recorded
by scripts/reference_parity.sh from the unmodified reference on its own stack): step 0 of its eight losses
with and without a shared perturbation, every term to 1e-5, token ids, labels and masks exactly, its error
on data it crashes on, and its judge aggregation. The prompts it sent are kept as digests; they are
compared when SAFEERASER_REFERENCE_DIR names a checkout of the reference."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

import fake_reference_checkout as fake

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "reference_parity"))
import case  # noqa: E402
import perturb  # noqa: E402
import record  # noqa: E402
import run_ours  # noqa: E402

FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "reference_parity.json").read_text())


@pytest.fixture(scope="module")
def parity(tmp_path_factory, tiny_family_dir):
    work = tmp_path_factory.mktemp("parity")
    model = work / "tiny-llava"
    shutil.copytree(tiny_family_dir("llava"), model)
    perturb.seed_pad_embedding(model)  # as the script does: padding's embedding then matters
    if record.weights_digest(model) != FIXTURE["model"]["weights_sha256"]:
        pytest.fail("the tiny LLaVA's weights are not those the fixture was recorded on: the tiny model builder "
                    "changed; rerun scripts/reference_parity.sh to record the reference again")
    case.write(work / "case")
    checkout = fake.write(work / "checkout")  # the judge templates: stand-ins with our own text
    (checkout / "config" / "model_config.yaml").write_text(yaml.safe_dump({"llava-v1.5-vicuna": {
        "system_tag": FIXTURE["tags"]["system"], "question_start_tag": FIXTURE["tags"]["user"],
        "answer_tag": FIXTURE["tags"]["answer"]}}))
    tags = FIXTURE["infer_prompt"]["tags"]
    (checkout / "conversation.py").write_text(fake.conversation_py(tags["system"], tags["roles"], tags["sep"]))
    return model, work / "case", checkout


@pytest.mark.heavy
def test_step0_of_every_loss_is_the_references(parity):
    model, work, checkout = parity
    worst = {}
    for key, expected in FIXTURE["losses"].items():
        loss, perturbed = key.removesuffix("_perturbed"), key.endswith("_perturbed")
        got = run_ours.step0(str(model), work, str(checkout), loss, perturbed)
        mine = {**got["terms"], "total": got["total"]}
        assert set(mine) == set(expected["terms"]), key
        for term, ref in expected["terms"].items():
            worst[f"{key}/{term}"] = record.relative_difference(term, mine[term], ref, expected["terms"])
        assert got["lr"] == expected["lr"], key
        if key in FIXTURE["batches"]:
            assert got["batch"] == FIXTURE["batches"][key], key
    assert max(worst.values()) <= record.REL_TOL, {k: v for k, v in worst.items() if v > record.REL_TOL}


def test_data_the_reference_crashes_on_is_refused(parity):
    from safeeraser.io import DataError

    model, work, checkout = parity
    with pytest.raises(DataError, match="8 harmless pairs and only 6 unsafe pairs"):
        run_ours.step0(str(model), work, str(checkout), "gdpd", False, data="uneven.json")


def test_inference_prompt_is_the_references(parity):
    model, work, checkout = parity
    assert run_ours.infer_prompt(str(model), work, str(checkout)) == FIXTURE["infer_prompt"]["input_ids"]


def test_reference_aggregation_is_the_references(parity):
    _, work, checkout = parity
    got = run_ours.judge(work, str(checkout))["reference_aggregate"]
    assert got == pytest.approx(FIXTURE["judge"]["reference_aggregate"], abs=1e-12)


@pytest.mark.skipif(not os.environ.get("SAFEERASER_REFERENCE_DIR"),
                    reason="the reference's prompts are its text: set SAFEERASER_REFERENCE_DIR to a checkout")
def test_prompts_are_the_references_byte_for_byte(parity):
    _, work, _ = parity
    sent = run_ours.judge(work, os.environ["SAFEERASER_REFERENCE_DIR"])
    assert sorted({record.messages_digest(m) for m in sent["messages"]}) == FIXTURE["judge"]["messages_sha256"]
    assert sent["models"] == FIXTURE["judge"]["models"] and not sent["sent_temperature_or_max_tokens"]
