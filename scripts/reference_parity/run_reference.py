"""Run the UNMODIFIED reference forget.py on the parity case and record its first micro-batch.

Reference venv (transformers 4.46.3, CPU):

    python run_reference.py --ref REF --work WORK --model LEGACY_LLAVA_DIR --loss gdpd [--perturb] --out X.json
    python run_reference.py --ref REF --work WORK --model DIR --all            # 8 losses x {plain, perturbed}
    python run_reference.py --ref REF --work WORK --model DIR --loss gdpd --data dataset/uneven.json \
        --expect-error [--epochs 2] --out X.json     # whole epoch(s), records the IndexError it expects

forget.py runs in this process (runpy, cwd WORK, hydra overrides as argv). Nothing in REF is edited; the
only patches are: flash_attention_2 -> sdpa and fp16/bf16 -> fp32 at model load, the hub CLIP image
processor -> the model dir, deepspeed 0.14.2's import of a helper newer torch dropped, and for kl/klpd a
stand-in DeepSpeed plugin with deepspeed.initialize returning the oracle unchanged (forget.py then calls
.eval() and freezes it itself); an empty `debugpy` module (imported, never used, not installed). No device
patch: the reference venv's torch is a CPU build. --perturb applies perturb.perturb to the trainable PEFT
model right after accelerator.prepare (and adds LoRA.dropout=0).

The run stops right after the first accelerator.backward (exit 0) and OUT.json records that micro-batch:
`losses` (each model forward: which view, outputs.loss), `kl`, `total`, `batch` (the first collated
views), `lr_at_first_step`, `perturbed`, versions and the reference commit; `forward_details` (4.46's
legacy image merge and its left-padding guess per call) and `items` (each dataset item's retain index,
which the pd view reuses) are extra. With --expect-error the run goes on through the whole epoch(s)
and `error` holds the exception (exit 1 if none came).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import runpy
import subprocess
import sys
import time
import traceback
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOSSES = ("ga", "gd", "kl", "idk", "gapd", "gdpd", "klpd", "idkpd")
SLOTS = ("forget", "retain", "pd")  # positions in the collator's tuple (the idk view sits in "forget")
# pyarrow 21 beside the venv (reference_parity.sh --make-venv puts it there): the reference stack's numpy<2
# cannot import a newer pyarrow, which `datasets` imports
EXTRA_SITE = os.environ.get("REFERENCE_EXTRA_SITE", str(Path(sys.prefix) / "extra_site"))
# A clone of the reference repository, to name the commit of an extract that is not a git checkout
REF_GIT = os.environ.get("REFERENCE_GIT", "")


class StopAfterBackward(BaseException):
    """BaseException, so neither forget.py nor hydra (which catch Exception) swallows it."""


# ----------------------------------------------------------------------------- provenance
def _git_tree_id(path: Path) -> str | None:
    """The git tree id of a directory's files (bytecode caches and .git skipped), to match an archive
    extract against the reference repository without trusting its contents."""
    entries = []
    for child in sorted(path.iterdir()):
        if child.name in (".git", "__pycache__"):
            continue
        if child.is_symlink():
            mode, data = b"120000", os.readlink(child).encode()
        elif child.is_dir():
            sub = _git_tree_id(child)
            if sub is None:  # git does not store empty folders
                continue
            entries.append((child.name.encode() + b"/", b"40000 " + child.name.encode(), sub))
            continue
        else:
            mode, data = (b"100755" if os.access(child, os.X_OK) else b"100644"), child.read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        entries.append((child.name.encode(), mode + b" " + child.name.encode(), blob))
    if not entries:
        return None
    body = b"".join(head + b"\0" + bytes.fromhex(sha) for _, head, sha in sorted(entries))  # git's order
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def reference_commit(ref: Path, ref_git: str) -> dict:
    if (ref / ".git").exists():
        head = subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], capture_output=True, text=True)
        return {"commit": head.stdout.strip() or None, "how": "git checkout"}
    tree = _git_tree_id(ref)
    commit = None
    if ref_git and os.path.isdir(ref_git):  # read-only lookup: which commit has exactly this tree
        log = subprocess.run(["git", "-C", ref_git, "log", "--all", "--format=%H %T"], capture_output=True, text=True)
        commit = next((c for c, t in (line.split() for line in log.stdout.splitlines()) if t == tree), None)
    return {"commit": commit, "tree": tree, "how": "tree id of the extract matched against " + ref_git}


# ----------------------------------------------------------------------------- one run, in process
def _digest(t) -> dict:
    import torch

    arr = t.detach().to(torch.float32).contiguous().numpy()
    return {"sha256": hashlib.sha256(arr.tobytes()).hexdigest(), "shape": list(arr.shape)}


def _ints(t) -> list:
    return t.detach().to("cpu").long().tolist()


def run_one(a) -> int:
    ref, work, model_dir = a.ref.resolve(), a.work.resolve(), str(a.model.resolve())
    out_path = a.out.resolve()
    t0 = time.time()
    os.environ.update(HYDRA_FULL_ERROR="1", WANDB_DISABLED="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      TOKENIZERS_PARALLELISM="false")
    sys.dont_write_bytecode = True  # keep REF byte-for-byte as extracted
    sys.path[:0] = [EXTRA_SITE, str(ref), str(HERE)]
    if not (work / "config").is_symlink():
        (work / "config").symlink_to(ref / "config")
    os.chdir(work)  # the reference reads ./dataset/prompt.json and ./config/model_config.yaml

    import socket

    import torch
    import torch.distributed.elastic.agent.server.api as elastic_api

    torch.set_num_threads(a.threads)
    if not hasattr(elastic_api, "_get_socket_with_port"):
        # deepspeed 0.14.2 imports this helper (only its elastic agent, unused here, calls it).
        elastic_api._get_socket_with_port = lambda: socket.create_server(("localhost", 0))

    patches = []
    if importlib.util.find_spec("debugpy") is None:
        # forget.py imports debugpy but never uses it; the reference venv lacks it.
        sys.modules["debugpy"] = types.ModuleType("debugpy")
        patches.append("empty stand-in module for forget.py's unused `import debugpy`")

    import accelerate
    import deepspeed
    import peft
    import transformers
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration

    import data_module  # the reference's; forget.py imports the same module object
    import perturb as perturb_mod

    rec = {"loss": a.loss, "data": a.data, "perturbed": None, "losses": [], "kl": [], "total": None,
           "lr_at_first_step": None, "batch": None, "forward_details": [], "items": [], "patches": patches,
           "error": None,
           "versions": {m.__name__: m.__version__ for m in (torch, transformers, peft, accelerate, deepspeed)},
           "reference": reference_commit(ref, a.ref_git), "torch_threads": torch.get_num_threads()}
    st = {"views": None, "oracle": None, "optimizer": None, "backwards": 0, "last_item": None, "merge": None}

    def note(msg):
        msg not in rec["patches"] and rec["patches"].append(msg)

    # --- patches: dtype / attention / image processor source / DeepSpeed for the oracle
    model_fp = LlavaForConditionalGeneration.from_pretrained.__func__

    def from_pretrained(cls, *args, **kw):
        if kw.get("attn_implementation") == "flash_attention_2":
            kw["attn_implementation"] = "sdpa"
            note("attn_implementation flash_attention_2 -> sdpa")
        if kw.get("torch_dtype") in (torch.float16, torch.bfloat16):
            note(f"torch_dtype {kw['torch_dtype']} -> float32")
            kw["torch_dtype"] = torch.float32
        return model_fp(cls, *args, **kw)

    LlavaForConditionalGeneration.from_pretrained = classmethod(from_pretrained)
    ip_fp = CLIPImageProcessor.from_pretrained.__func__

    def ip_from_pretrained(cls, name, *args, **kw):
        if str(name).startswith("openai/clip"):
            note(f"CLIPImageProcessor {name} -> model dir")
            name = model_dir
        return ip_fp(cls, name, *args, **kw)

    CLIPImageProcessor.from_pretrained = classmethod(ip_from_pretrained)

    class StandInPlugin:  # only what forget.e_prepare_deepspeed reads
        deepspeed_config = {"zero_optimization": {"stage": 0}, "train_micro_batch_size_per_gpu": 1}

    def ds_initialize(*args, model=None, **kw):
        st["oracle"] = model
        st["accelerator"].state.deepspeed_plugin = None  # the stand-in lives only for this call
        note("deepspeed.initialize -> module unchanged (stand-in ZeRO-0 plugin)")
        return model, None, None, None

    deepspeed.initialize = ds_initialize

    # --- instrumentation
    A = accelerate.Accelerator
    prepare, backward = A.prepare, A.backward

    def prepare_hook(self, *args, **kw):
        out = prepare(self, *args, **kw)
        st["accelerator"], st["optimizer"] = self, out[1]
        if a.perturb:
            rec["perturbed"] = perturb_mod.perturb(out[0])  # the trainable PEFT model, not the oracle
        if "kl" in a.loss:
            self.state.deepspeed_plugin = StandInPlugin()
        return out

    def backward_hook(self, loss, **kw):
        result = backward(self, loss, **kw)
        st["backwards"] += 1
        if st["backwards"] == 1:
            rec["total"] = loss.item()
            rec["lr_at_first_step"] = st["optimizer"].param_groups[0]["lr"]
            if not a.expect_error:
                raise StopAfterBackward
        return result

    A.prepare, A.backward = prepare_hook, backward_hook

    collate = data_module.custom_data_collator_forget.__call__

    def collate_hook(self, instances):
        views = collate(self, instances)
        if st["views"] is None:  # the first batch (accelerate's look-ahead collates the next one early)
            st["views"] = {n: v["input_ids"].clone() for n, v in zip(SLOTS, views)}
            rec["batch"] = {n: {"input_ids": _ints(v["input_ids"]), "labels": _ints(v["labels"]),
                                "attention_mask": _ints(v["attention_mask"]),
                                "pixel_values": _digest(v["pixel_values"])} for n, v in zip(SLOTS, views)}
        return views

    data_module.custom_data_collator_forget.__call__ = collate_hook
    getitem = data_module.MMForgetDatasetQA.__getitem__

    def getitem_hook(self, idx):
        st["last_item"] = idx
        if self.retain_data:  # replay the item's retain pick on a copy of the RNG state (the idk
            state = torch.get_rng_state()  # views draw their refusal first); the pd view reuses that index
            if self.split1 == "idk":
                torch.randint(0, len(self.idk), (1,))
            r = torch.randint(0, len(self.retain_data), (1,)).item()
            torch.set_rng_state(state)
            rec["items"].append({"epoch": len(rec["items"]) // len(self), "item": idx,
                                 "retain_index": (idx + r) % len(self.retain_data), "n_pd": len(self.pd_data)})
        return getitem(self, idx)

    data_module.MMForgetDatasetQA.__getitem__ = getitem_hook

    def which(ids) -> str:
        v = st["views"] or {}
        cands = dict(v)
        if "forget" in v and "retain" in v:
            cands["pooled"] = torch.cat((v["forget"], v["retain"]), dim=0)
        hits = [n for n, t in cands.items() if t.shape == ids.shape and torch.equal(t, ids.to(t.device))]
        return "|".join(hits) or "unmatched"

    merge = LlavaForConditionalGeneration._merge_input_ids_with_image_features

    def merge_hook(self, feats, embeds, input_ids, attention_mask, labels):
        out = merge(self, feats, embeds, input_ids, attention_mask, labels)
        # 4.46 decides left padding from the last column only: no row ending in pad => "left padded".
        st["merge"] = {"left_padding": not bool((input_ids[:, -1] == self.pad_token_id).any()),
                       "merged_len": int(out[0].shape[1])}
        return out

    LlavaForConditionalGeneration._merge_input_ids_with_image_features = merge_hook
    forward = LlavaForConditionalGeneration.forward

    def forward_hook(self, *args, **kw):
        st["merge"] = None
        out = forward(self, *args, **kw)
        if st["backwards"] == 0:
            name = which(kw["input_ids"])
            if self is st["oracle"]:
                name = "oracle:" + name
            loss = None if out.loss is None else float(out.loss.item())
            rec["losses"].append({"inputs": name, "loss": loss})
            rec["forward_details"].append({"inputs": name, "legacy_merge": st["merge"] is not None,
                                           **(st["merge"] or {}), "logits_shape": list(out.logits.shape)})
        return out

    LlavaForConditionalGeneration.forward = forward_hook
    kl_div = torch.nn.functional.kl_div

    def kl_hook(*args, **kw):
        value = kl_div(*args, **kw)
        if st["backwards"] == 0:
            rec["kl"].append(float(value.item()))
        return value

    torch.nn.functional.kl_div = kl_hook

    # --- run
    save_dir = out_path.parent / "ckpt" / out_path.stem
    overrides = ["--config-name", "forget_lora.yaml", f"model_path={model_dir}", f"data_path={a.data}",
                 "batch_size=1", "gradient_accumulation_steps=1", "num_epochs=1", f"forget_loss={a.loss}",
                 "report_to=null", "workers=0", f"save_dir={save_dir}",
                 f"hydra.run.dir={save_dir}/hydra"]  # keep hydra's output folder out of WORK
    if a.perturb:
        overrides.append("LoRA.dropout=0")
    if a.seed is not None:
        overrides.append(f"seed={a.seed}")
    if a.epochs != 1:
        overrides[overrides.index("num_epochs=1")] = f"num_epochs={a.epochs}"
    rec["argv"] = overrides
    sys.argv = [str(ref / "forget.py"), *overrides]
    rc = 0
    try:
        runpy.run_path(str(ref / "forget.py"), run_name="__main__")
        if a.expect_error:
            rec["error"] = None
            rc = 1  # the error the caller expected did not happen
    except StopAfterBackward:
        pass
    except Exception as e:  # noqa: BLE001 - recorded; a failure (rc 1) unless it was expected
        frame = traceback.extract_tb(e.__traceback__)[-1]
        rec["error"] = {"type": type(e).__name__, "message": str(e), "line": frame.line,
                        "raised_at": f"{frame.filename}:{frame.lineno}", "dataset_item": st["last_item"],
                        "backward_calls_before": st["backwards"]}
        if not a.expect_error:
            rc = 1
    rec["wall_s"] = round(time.time() - t0, 3)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(rec, indent=1))
    return rc


# ----------------------------------------------------------------------------- all 16 runs
def run_all(a) -> int:
    out_dir = a.work.resolve() / "reference"
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    jobs = [(loss, p) for loss in LOSSES for p in (False, True)]

    def one(job):
        loss, pert = job
        tag = loss + ("_perturbed" if pert else "")
        cmd = [sys.executable, __file__, "--ref", str(a.ref), "--work", str(a.work), "--model", str(a.model),
               "--loss", loss, "--threads", str(a.threads), "--out", str(out_dir / f"{tag}.json")]
        t = time.time()
        with open(out_dir / "logs" / f"{tag}.log", "w") as log:
            rc = subprocess.run(cmd + (["--perturb"] if pert else []), stdout=log, stderr=subprocess.STDOUT).returncode
        return tag, rc, round(time.time() - t, 1)

    t0 = time.time()
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(one, jobs))
    for tag, rc, secs in results:
        print(f"{tag:16s} rc={rc} {secs}s")
    print(f"all {len(results)} runs: {time.time() - t0:.1f}s wall with {a.jobs} at a time")
    return max(rc for _, rc, _ in results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True, help="folder from export_legacy.py (name contains llava)")
    ap.add_argument("--loss", choices=LOSSES)
    ap.add_argument("--data", default="dataset/all_train.json", help="relative to WORK, as the reference reads it")
    ap.add_argument("--perturb", action="store_true")
    ap.add_argument("--expect-error", action="store_true", help="run the whole epoch; record the exception")
    ap.add_argument("--seed", type=int, help="config override (the reference's default is 233)")
    ap.add_argument("--epochs", type=int, default=1, help="config override num_epochs")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--all", action="store_true", help="all 8 losses, plain and perturbed, into WORK/reference/")
    ap.add_argument("--jobs", type=int, default=2, help="--all: runs at a time")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("REF_THREADS", "1")))
    ap.add_argument("--ref-git", default=REF_GIT, help="reference repository to identify the commit of REF")
    a = ap.parse_args()
    if "llava" not in str(a.model):
        ap.error("--model must contain 'llava': forget.py branches on it")
    if a.all:
        return run_all(a)
    if not (a.loss and a.out):
        ap.error("--loss and --out are required without --all")
    return run_one(a)


if __name__ == "__main__":
    sys.exit(main())
