"""Our side of the parity check: step 0 of every reference loss in reference mode, on the parity case.

    .venv/bin/python scripts/reference_parity/run_ours.py --model TINY --work WORK --reference-dir REF [--out F]

TINY is our tiny LLaVA (the same weights the reference side loads in its own format), WORK the folder
`case.py` wrote. For each loss, with and without the perturbation, it sets up a training run from
config/forget_reference.yaml exactly as `forget.py` would, takes the first micro-batch and computes the
step-0 loss and its terms with the training loop's own function. The CI test (tests/train/
test_reference_parity.py) calls `step0` and compares it with the reference's recorded values.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LOSSES = ("ga", "gd", "kl", "idk", "gapd", "gdpd", "klpd", "idkpd")
# Our term names for what the reference logs per forward pass (PO's pooled pass is one term of ours)
TERM_OF = {"forget": "forget", "retain": "retain", "pd": "pd", "pooled": "idk_retain", "kl": "kl"}


def _single_image(ids: list[int], image_id: int) -> list[int]:
    """The positions of `ids` with each run of image tokens kept as its first: the reference's text before
    its model expands the one placeholder."""
    return [i for i in range(len(ids)) if not (ids[i] == image_id and i and ids[i - 1] == image_id)]


def _view_rows(batch: dict, image_id: int) -> dict:
    rows = {k: batch[k][0].tolist() for k in ("input_ids", "labels", "attention_mask")}
    keep = _single_image(rows["input_ids"], image_id)
    return {k: [v[i] for i in keep] for k, v in rows.items()}


def step0(model: str, work: Path, reference_dir: str, loss: str, perturbed: bool, data: str = "all_train.json",
          overrides: tuple[str, ...] = ()):
    """(total, {term: value}, {view: ids/labels/mask}, lr) of step 0 in reference mode (with `overrides`:
    one of our options instead, to measure what it changes)."""
    import torch

    from perturb import perturb
    from safeeraser.train import step as train_step
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import Trainer

    # In the case's folder, as the reference runs: its image paths are relative to it
    with tempfile.TemporaryDirectory() as save, contextlib.chdir(work):
        settings = [f"model_path={model}", f"data_path={work / 'dataset' / data}",
                     f"idk_path={work / 'dataset' / 'prompt.json'}", f"reference_dir={reference_dir}",
                     f"forget_loss={loss}", "batch_size=1", "gradient_accumulation_steps=1", "num_epochs=1",
                     f"save_dir={save}", "model_dtype=float32", "gradient_checkpointing=false"]
        if perturbed:
            settings.append("LoRA.dropout=0")
        cfg = load_config("forget_reference.yaml", settings + list(overrides))
        trainer = Trainer(cfg).setup()
        touched = perturb(trainer.model) if perturbed else None
        trainer.model.train()
        views = next(iter(trainer.loader))
        with torch.no_grad():
            total, parts = train_step.compute_loss(trainer.model, views, trainer.method, cfg, trainer.pad_id,
                                                   trainer.family, ref_model=trainer.ref_model, epoch=0)
        image_id = trainer.processor.tokenizer.convert_tokens_to_ids(trainer.processor.image_token)
        # The views as the loss sees them: in reference mode compute_loss pads every view of the micro-batch
        # to their common width, as the reference's collator does
        common = max(batch["input_ids"].shape[1] for batch in views.values())
        rows = {name: _view_rows(train_step.widen(batch, common, trainer.pad_id), image_id)
                for name, batch in views.items()}
        return {"total": float(total), "terms": {k: float(v) for k, v in parts.items()}, "batch": rows,
                "lr": trainer.optimizer.param_groups[0]["lr"], "perturbed": touched}


def infer_prompt(model: str, work: Path, reference_dir: str) -> list[int]:
    """Our ckpt_infer's prompt ids for the case's question with --prompt_format reference (the image's
    tokens as one placeholder, as the reference's tokenizer sees its text)."""
    from case import CATEGORY, QUESTION
    from safeeraser.data.encode import PromptEncoder
    from safeeraser.models.families import family_of_path
    from safeeraser.models.loading import load_processor
    from safeeraser.reference.checkout import inference_tags

    processor = load_processor(model)
    encoder = PromptEncoder(processor, family_of_path(model), inference_tags=inference_tags(reference_dir))
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    ids = encoder.encode_prompt(work / "dataset/images" / CATEGORY / "img_000.png", QUESTION).input_ids.tolist()
    return [ids[i] for i in _single_image(ids, image_id)]


class _ScriptedJudge:
    """An OpenAI-compatible endpoint on localhost answering by case.judge_reply; "__raise__" is a server
    error on every try. Records every request body."""

    def __init__(self):
        import http.server
        import threading

        from case import judge_reply

        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                bodies.append(body)
                reply = judge_reply(body["messages"][-1]["content"])
                status, payload = (500, {"error": {"message": "scripted failure"}}) if reply == "__raise__" else (
                    200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": reply}}]})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


def judge(work: Path, reference_dir: str) -> dict:
    """Our eval_all with the reference's templates (from `reference_dir`) and its aggregation, on the
    judge case, against the scripted judge: the messages sent and the reference-aggregated stats."""
    from case import write_judge_case
    from safeeraser.eval import evaluate, make_judge
    from safeeraser.eval.judges.asker import ChatSettings

    answers, refer, _ = write_judge_case(work)
    server = _ScriptedJudge()
    try:
        with tempfile.TemporaryDirectory() as out, contextlib.chdir(work):
            settings = ChatSettings(model=None, base_url=server.url, api_key="scripted", max_retries=0, backoff=0,
                                    concurrency=1)
            judge_ = make_judge("openai", settings=settings, templates="reference", reference_dir=reference_dir,
                                cache_path=Path(out) / "cache.jsonl")
            stats = evaluate(answers, refer, Path(out) / "judged.json", judge_, show_progress=False,
                             aggregate="reference")
    finally:
        server.close()
    return {"messages": [b["messages"] for b in server.bodies], "models": sorted({b["model"] for b in server.bodies}),
            "sent_temperature_or_max_tokens": any("temperature" in b or "max_tokens" in b for b in server.bodies),
            "reference_aggregate": stats["reference_aggregate"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--reference-dir", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = {}
    for loss in LOSSES:
        for perturbed in (False, True):
            key = loss + ("_perturbed" if perturbed else "")
            out[key] = step0(args.model, args.work, args.reference_dir, loss, perturbed)
            print(key, out[key]["total"], out[key]["terms"], flush=True)
    try:  # where the reference's PD draw raises IndexError, reference mode refuses the data up front
        step0(args.model, args.work, args.reference_dir, "gdpd", False, data="uneven.json")
        out["uneven"] = None
    except Exception as exc:  # noqa: BLE001 - recorded, whatever it is
        out["uneven"] = f"{type(exc).__name__}: {exc}"
    out["infer_prompt"] = infer_prompt(args.model, args.work, args.reference_dir)
    out["judge"] = judge(args.work, args.reference_dir)
    print("judge", out["judge"]["reference_aggregate"], flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
