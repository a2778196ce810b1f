"""What differs between vision-language model families, behind one interface.

A family is chosen from the checkpoint's `config.model_type` (see `families.family_for`). Everything
family-specific lives in the family's own file: where the vision tower, the projector and the language
model sit in the module tree (LoRA targets, which parts tune, the reference checkpoint's key names),
extra end-of-turn tokens, how the processor's image inputs are batched, the position ids of cached
generation, and how to build a tiny random model of the family. Prompts themselves are the
processor's: its chat template and its image-token expansion, so nothing here re-implements them.

This module imports nothing from `data/`, `train/` or `infer/`: they consult it.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

# Prefixes that wrappers put in front of the model's own parameter names.
_WRAPPERS = re.compile(r"^(module\.)*(base_model\.model\.)?")


class Family:
    model_type: str = ""
    # Module paths in the model's own tree (transformers 5 names).
    vision: str = "model.vision_tower"
    projector: str = "model.multi_modal_projector"
    language: str = "model.language_model"
    # End-of-turn tokens that end an answer besides the tokenizer's EOS (Gemma's <end_of_turn>).
    stop_tokens: tuple[str, ...] = ()
    # (pattern, replacement) pairs mapping older key names (the reference's checkpoint.pt) to today's.
    legacy_keys: tuple[tuple[str, str], ...] = ()
    # Other names configs use for this family (the reference's `model_family` values)
    reference_names: tuple[str, ...] = ()
    # The engine's own decoding loop (reserved cache, positions from prefill_positions/step_positions)
    # serves the family; False sends it through transformers' `generate` instead.
    fast_decoding: bool = True
    # Position ids are one index per token, which a caller may pass (kl_positions=reference gives padding
    # position 1); False where the model derives several axes of positions from the image (M-RoPE).
    token_positions: bool = True

    # --- which parameters train -------------------------------------------------------------------
    def part_of(self, name: str) -> str:
        """'projector', 'vision' or 'language' for a parameter or module name (wrapper prefixes ignored).
        The projector is tested first: in some families it sits inside the vision tower."""
        name = _WRAPPERS.sub("", name)
        for part, prefix in (("projector", self.projector), ("vision", self.vision)):
            if name == prefix or name.startswith(prefix + "."):
                return part
        return "language"

    def lora_targets(self, names, layers=None) -> str:
        """A PEFT target regex for projection names (q_proj, ...) inside the language model only (the
        vision towers have modules of the same names); with `layers`, inside those decoder layers only."""
        where = "" if layers is None else rf"\.layers\.({'|'.join(str(int(i)) for i in layers)})"
        return rf"{re.escape(self.language)}{where}\..*\.({'|'.join(re.escape(n) for n in names)})"

    def modules_to_save(self, tune_vision: bool, tune_projector: bool) -> list[str]:
        """Fully trained copies next to LoRA: the tuned vision tower and/or projector (a projector inside
        a tuned vision tower is already part of it)."""
        out = [self.vision] if tune_vision else []
        if tune_projector and not (tune_vision and self.projector.startswith(self.vision + ".")):
            out.append(self.projector)
        return out

    def mlp_neurons(self, names_and_modules) -> dict[str, str]:
        """{module name: 'vision' | 'language'} of the MLP linear layers whose output units are the
        neurons importance methods score (MANU): the nn.Linear modules under an `mlp` module of the vision
        tower or of the language model (fc1/fc2 of CLIP and SigLIP, gate/up/down projections of the
        decoders). A family whose MLPs are named otherwise overrides this."""
        out = {}
        for name, module in names_and_modules:
            bare = _WRAPPERS.sub("", name)
            if not isinstance(module, torch.nn.Linear) or ".mlp." not in f".{bare}":
                continue
            part = self.part_of(bare)
            if part == "vision" or bare.startswith(self.language + "."):
                out[name] = part
        return out

    # The last linear layer of an MLP, by its name in the MLP module: its inputs are the MLP's units
    # (the intermediate neurons), whose input rows are those of the MLP's other linear layers
    mlp_output_names: tuple[str, ...] = ("fc2", "down_proj")

    def mlp_units(self, names_and_modules) -> dict[str, tuple[str, str, list[str]]]:
        """{MLP module name: (its part, the name of its output projection, the names of its input
        projections)} for the MLPs of the vision tower and of the language model."""
        modules = dict(names_and_modules)
        out = {}
        for name in modules:
            bare = _WRAPPERS.sub("", name)
            if not bare.endswith(".mlp"):
                continue
            part = self.part_of(bare)
            if part != "vision" and not bare.startswith(self.language + "."):
                continue
            linears = [c for c, m in modules[name].named_children() if isinstance(m, torch.nn.Linear)]
            outs = [c for c in linears if c in self.mlp_output_names]
            if len(outs) == 1 and len(linears) > 1:
                out[name] = (part, f"{name}.{outs[0]}", [f"{name}.{c}" for c in linears if c != outs[0]])
        return out

    # --- batching -------------------------------------------------------------------------------
    def collate_images(self, items: list[dict]) -> dict:
        """The processor's image inputs of several examples as one batch. Processors give either one
        row per image (pixel_values (1, 3, H, W), image_sizes, image_grid_thw) or rows concatenated
        over images (patches or tiles): either way the batch is the concatenation along dim 0. Where
        trailing sizes differ (a different number of tiles per image) they are zero-padded: the models
        drop padded tiles by the image sizes they are given."""
        out = {}
        for key in items[0]:
            values = [item[key] for item in items]
            shape = [max(v.shape[d] for v in values) for d in range(values[0].dim())]
            padded = []
            for v in values:
                pad = []
                for d in reversed(range(1, v.dim())):
                    pad += [0, shape[d] - v.shape[d]]
                padded.append(F.pad(v, pad) if any(pad) else v)
            out[key] = torch.cat(padded)
        return out

    # --- cached generation ----------------------------------------------------------------------
    def prefill_positions(self, model, inputs: dict) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Position ids of a left-padded prompt batch, and each row's next position (rows, 1). Positions
        count real tokens only, as `generate` counts them, so a row's answer does not depend on its
        padding."""
        mask = inputs["attention_mask"]
        return (mask.cumsum(-1) - 1).clamp(min=0), mask.sum(-1, keepdim=True)

    def step_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Position ids of one decoding step from each row's position (rows, 1)."""
        return positions

    # --- the tiny model -------------------------------------------------------------------------
    def build_tiny(self, texts, size: str, seed: int):
        """(model, processor): a randomly initialised model of this family small enough for a CPU,
        with a tokenizer trained on `texts` carrying the family's special tokens and chat template."""
        raise NotImplementedError(f"no tiny builder for '{self.model_type}'")

    # --- the bench's random 7B model (bench/assets.py: its registry line names the family) ------------------
    bench_architecture: str | None = None  # the model class a saved folder names (vLLM picks by it)

    def bench_files(self, tiny_processor, dry_run: bool):
        """(processor, config) of the family's 7B architecture with random weights, behind the tiny
        tokenizer; `dry_run`: every width and depth shrunk to the tiny model's (the same code on a CPU)."""
        raise NotImplementedError(f"no 7B bench model for '{self.model_type}'")

    def __repr__(self) -> str:
        return f"<family {self.model_type}>"
