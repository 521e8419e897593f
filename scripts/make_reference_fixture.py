"""Regenerate test/fixtures/reference/: a tiny LeWM checkpoint made by the authors' library.

The fixture is produced by the reference implementation itself (the authors' PyPI library
`stable-worldmodel`, whose `stable_worldmodel.wm.lewm` package holds the same LeWM model as
lucas-maes/le-wm `jepa.py` + `module.py`, and `stable-pretraining`'s `vit_hf`, which builds the
HuggingFace-transformers ViTModel encoder). It is NOT part of lewm_ros and must never run in the
project venv: it imports that library from a scratch venv outside the repository.

Scratch venv (outside the repo; torch/torchvision pinned to the versions the fixture was made
with; REF_VENV and REF_TF5 are any two directories outside the repository, e.g.
``REF_VENV=~/lewm_ref REF_TF5=~/lewm_ref_tf5``):

    python3 -m venv $REF_VENV
    $REF_VENV/bin/pip install torch==2.14.1 torchvision==0.29.1
    $REF_VENV/bin/pip install stable-worldmodel==0.1.1 "transformers>=4.50,<5" \
        hydra-core omegaconf timm torchmetrics opencv-python-headless imageio kornia lightning \
        matplotlib requests_cache "huggingface-hub>=0.34,<1.0" "datasets<4.1"
    $REF_VENV/bin/pip install --no-deps stable-pretraining==0.1.8
    # transformers 5.x overlay, used only by --verify to check weights_hf5.pt:
    $REF_VENV/bin/pip install --no-deps --target $REF_TF5 transformers==5.17.0 \
        "huggingface-hub>=1.5,<2" "tokenizers>=0.23.1,<0.24" httpx httpcore h11 anyio sniffio

Run (from the repository root):

    $REF_VENV/bin/python scripts/make_reference_fixture.py --out test/fixtures/reference
    $REF_VENV/bin/python scripts/make_reference_fixture.py --out test/fixtures/reference --verify
    PYTHONPATH=$REF_TF5 $REF_VENV/bin/python \
        scripts/make_reference_fixture.py --out test/fixtures/reference --verify

Generation needs transformers 4.x (native key names `encoder.encoder.layer.N...`, as in the
published checkpoints); `weights_hf5.pt` is derived with the 4.x -> 5.x key mapping below.
`--verify` rebuilds the model from `config.json` with the library's own `load_pretrained`
(hydra instantiate), loads the weights file native to the installed transformers major version
with strict=True, recomputes every output and compares it with io.pt.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
from pathlib import Path

import torch

LOG = logging.getLogger("make_reference_fixture")

SEED = 0
BATCH = 2  # B
FRAMES = 3  # T of the encode/predict inputs
SAMPLES = 4  # S candidate action sequences per batch element
HORIZON = 5  # length of each candidate sequence (action blocks, history actions included)
IMAGE = 28
ACTION_BLOCK = 4  # frameskip 2 x action_dim 2
EMBED = 48
ATOL = 1e-5

# Published layout (stable_worldmodel.wm.lewm, as written by save_pretrained and read by
# load_pretrained). The encoder section carries the four explicit ViTConfig sizes a small custom
# ViT needs; vit_hf forwards them to ViTConfig through **kwargs, so hydra can instantiate it.
CONFIG = {
    "_target_": "stable_worldmodel.wm.lewm.LeWM",
    "encoder": {
        "_target_": "stable_pretraining.backbone.utils.vit_hf",
        "size": "tiny",
        "patch_size": 14,
        "image_size": IMAGE,
        "pretrained": False,
        "use_mask_token": False,
        "hidden_size": EMBED,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "intermediate_size": 96,
    },
    "predictor": {
        "_target_": "stable_worldmodel.wm.lewm.module.Predictor",
        "num_frames": 3,
        "input_dim": EMBED,
        "hidden_dim": EMBED,
        "output_dim": EMBED,
        "depth": 2,
        "heads": 4,
        "mlp_dim": 64,
        "dim_head": 16,
        "dropout": 0.1,
        "emb_dropout": 0.0,
    },
    "action_encoder": {
        "_target_": "stable_worldmodel.wm.lewm.module.Embedder",
        "input_dim": ACTION_BLOCK,
        "emb_dim": EMBED,
    },
    "projector": {
        "_target_": "stable_worldmodel.wm.lewm.module.MLP",
        "input_dim": EMBED,
        "output_dim": EMBED,
        "hidden_dim": 96,
        "norm_fn": {"_target_": "torch.nn.BatchNorm1d", "_partial_": True},
    },
    "pred_proj": {
        "_target_": "stable_worldmodel.wm.lewm.module.MLP",
        "input_dim": EMBED,
        "output_dim": EMBED,
        "hidden_dim": 96,
        "norm_fn": {"_target_": "torch.nn.BatchNorm1d", "_partial_": True},
    },
}

README_TEMPLATE = """# Reference LeWM fixture (made by the authors' library)

A tiny LeWM checkpoint in the published `weights.pt` + `config.json` format, with inputs and
outputs computed by the authors' own code: `stable_worldmodel.wm.lewm.LeWM` (encode, predict,
rollout, criterion, get_cost) with its `Predictor` / `Embedder` / `MLP` modules and the encoder
built by `stable_pretraining.backbone.utils.vit_hf` (a HuggingFace `ViTModel`,
`add_pooling_layer=False`, `use_mask_token=False`). Every parameter and every BatchNorm running
statistic is random (AdaLN-zero gates included), model in eval mode, seed 0.

Made with: {versions} (CPU).

Regenerate / verify (scratch venv `$REF_VENV` and transformers 5.x overlay `$REF_TF5`, both
outside the repo; the docstring of the script has the commands that create them):

    $REF_VENV/bin/python scripts/make_reference_fixture.py --out test/fixtures/reference
    $REF_VENV/bin/python scripts/make_reference_fixture.py --out test/fixtures/reference --verify
    PYTHONPATH=$REF_TF5 $REF_VENV/bin/python \\
        scripts/make_reference_fixture.py --out test/fixtures/reference --verify

## Files
- `config.json`: the published layout (`_target_` keys as written by the library). The encoder
  section adds `hidden_size`, `num_hidden_layers`, `num_attention_heads`, `intermediate_size`
  (vit_hf passes them to `ViTConfig`; `layer_norm_eps` 1e-12 and `hidden_act` "gelu" are the
  HF defaults). `action_encoder` has only `input_dim` and `emb_dim`, as published: `Embedder`
  then uses its defaults `smoothed_dim=10`, `mlp_scale=4` (Conv1d 4->10, Linear 10->192->48).
- `weights.pt`: `torch.save(model.state_dict())`, {n_keys} keys, {n_values} values, encoder keys
  in transformers 4.x names (`encoder.encoder.layer.N.attention.attention.query.weight`, ...).
- `weights_hf5.pt`: the same tensors under transformers 5.x encoder names
  (`encoder.layers.N.attention.q_proj.weight`, ...); verified by strict loading in 5.17.0.
- `io.pt`: plain dict of float32 tensors (`torch.load(..., weights_only=True)`).

## io.pt
Inputs: `pixels` are already normalised; `actions` and `candidates` are action blocks
(frameskip 2 x action_dim 2 = 4), already z-scored. `goal_pixels` is one goal frame per batch
element.

- `emb` = `encode({{pixels}})["emb"]` (CLS of last_hidden_state -> projector);
  `act_emb` = `action_encoder(actions)`; `pred` = `predict(emb, act_emb)`;
  `goal_emb` = `encode({{goal_pixels}})["emb"]`.
- `rollout_<case>_predicted_emb` (B, S, H + (T - H) + 1, D): `rollout(info, candidates,
  history_size)` where the observed history is H frames and T = 5 is the candidate length
  (its first H action blocks pair with the observed frames); the first H rows are the encoded
  observations, then T - H + 1 predicted latents. `rollout_<case>_cost` (B, S): `criterion`,
  squared L2 summed over D between the last predicted latent and the goal latent. Each batch
  element was planned separately (B = 1 per call; the reference criterion only broadcasts
  correctly for B = 1).
  - `hs1`: H = 1 (pixels[:, :1]), history_size 1 (rollout + criterion).
  - `hs3`: H = 1 (pixels[:, :1]), history_size 3 (`get_cost`, whose rollout uses the default
    history_size = predictor.num_frames = 3).
  - `obs3_hs3`: H = 3 (all of `pixels`), history_size 3 (`get_cost`).

| key | shape |
|---|---|
{rows}
"""

# transformers 4.x ViTModel key -> 5.x key (inside the `encoder.` prefix). Keys not matched
# (embeddings.*, layernorm.*, layernorm_before/after) keep their names.
HF4_TO_HF5 = (
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.query\.", r"layers.\1.attention.q_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.key\.", r"layers.\1.attention.k_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.value\.", r"layers.\1.attention.v_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.o_proj."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.fc2."),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"layers.\1.layernorm_before."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"layers.\1.layernorm_after."),
)


def hf4_to_hf5(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the `encoder.` ViT keys of a full LeWM state dict from transformers 4.x to 5.x."""
    out = {}
    for key, value in state_dict.items():
        new_key = key
        if key.startswith("encoder."):
            inner = key[len("encoder."):]
            for pattern, repl in HF4_TO_HF5:
                inner, n = re.subn(pattern, repl, inner)
                if n:
                    break
            new_key = "encoder." + inner
        out[new_key] = value
    return out


def transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def build_model() -> torch.nn.Module:
    """Instantiate the LeWM model from CONFIG exactly as the library's load_pretrained does."""
    from hydra.utils import instantiate

    return instantiate(json.loads(json.dumps(CONFIG)))


@torch.no_grad()
def randomise(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Give every parameter and every BatchNorm running statistic a random, non-trivial value.

    Norm weights are 1 + N(0, 0.2^2) so activations stay well scaled; all other parameters
    (AdaLN-zero modulation weights and biases included) are N(0, 0.2^2); BatchNorm running
    means are N(0, 0.2^2), running variances U(0.5, 1.5).
    """
    for name, param in model.named_parameters():
        noise = torch.randn(param.shape, generator=gen) * 0.2
        is_norm_weight = name.endswith(".weight") and param.ndim == 1
        param.copy_(noise + 1.0 if is_norm_weight else noise)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
            module.num_batches_tracked.fill_(1000)


def plan_info(pixels: torch.Tensor, goal: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
    """Planning info dict in the layout the library's get_cost/rollout expect.

    pixels: (B, H, C, Hi, Wi) observed history; goal: (B, 1, C, Hi, Wi).
    Returns pixels (B, S, H, C, Hi, Wi), goal (B, S, 1, C, Hi, Wi) and a placeholder
    `action` (B, S, H, A) (get_cost pops it; rollout overwrites it with the candidates' first H).
    """
    b, h = pixels.shape[:2]
    return {
        "pixels": pixels.unsqueeze(1).expand(b, samples, *pixels.shape[1:]).clone(),
        "goal": goal.unsqueeze(1).expand(b, samples, *goal.shape[1:]).clone(),
        "action": torch.zeros(b, samples, h, ACTION_BLOCK),
    }


@torch.no_grad()
def compute_outputs(model: torch.nn.Module, io_in: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run the reference encode / predict / rollout / get_cost on the stored inputs."""
    pixels, actions = io_in["pixels"], io_in["actions"]
    goal, cands = io_in["goal_pixels"], io_in["candidates"]
    out: dict[str, torch.Tensor] = {}
    enc = model.encode({"pixels": pixels.clone(), "action": actions.clone()})
    out["emb"] = enc["emb"]
    out["act_emb"] = enc["act_emb"]
    out["pred"] = model.predict(enc["emb"], enc["act_emb"])
    out["goal_emb"] = model.encode({"pixels": goal.clone()})["emb"]

    cases = {
        "rollout_hs1": (pixels[:, :1], 1),
        "rollout_hs3": (pixels[:, :1], 3),
        "rollout_obs3_hs3": (pixels, 3),
    }
    for prefix, (history_pixels, history_size) in cases.items():
        # The reference criterion broadcasts goal_emb (B, 1, D) right-aligned against
        # predicted_emb (B, S, T, D), which is only correct for B == 1, so each batch element is
        # planned on its own (as the library's CEM solver does with batch_size 1).
        predicted, costs = [], []
        for b in range(history_pixels.shape[0]):
            info = plan_info(history_pixels[b : b + 1], goal[b : b + 1], SAMPLES)
            if history_size == model.predictor.num_frames:
                # get_cost: encode the goal (sample 0), rollout with the default history_size
                # (= predictor.num_frames), then criterion.
                cost = model.get_cost(info, cands[b : b + 1].clone())
            else:
                info["goal_emb"] = model.encode({"pixels": goal[b : b + 1].clone()})["emb"]
                info = model.rollout(info, cands[b : b + 1].clone(), history_size=history_size)
                cost = model.criterion(info)
            predicted.append(info["predicted_emb"])
            costs.append(cost)
        out[f"{prefix}_predicted_emb"] = torch.cat(predicted)
        out[f"{prefix}_cost"] = torch.cat(costs)
    return out


def make_inputs(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "pixels": torch.randn(BATCH, FRAMES, 3, IMAGE, IMAGE, generator=gen),
        "actions": torch.randn(BATCH, FRAMES, ACTION_BLOCK, generator=gen),
        "goal_pixels": torch.randn(BATCH, 1, 3, IMAGE, IMAGE, generator=gen),
        "candidates": torch.randn(BATCH, SAMPLES, HORIZON, ACTION_BLOCK, generator=gen),
    }


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("stable-worldmodel", "stable-pretraining", "transformers", "torch")}


def readme(versions: dict[str, str], io: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """Describe the fixture: provenance, versions, regeneration command and io.pt contents."""
    rows = "\n".join(f"| `{k}` | {tuple(v.shape)} |" for k, v in io.items())
    return README_TEMPLATE.format(
        versions=", ".join(f"{k} {v}" for k, v in versions.items()),
        n_keys=len(state),
        n_values=sum(v.numel() for v in state.values()),
        rows=rows,
    )


def generate(out_dir: Path) -> None:
    if transformers_major() != 4:
        raise SystemExit("generate with transformers 4.x (the published checkpoints' key names)")
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = build_model()
    randomise(model, gen)
    model.eval()
    io_in = make_inputs(gen)
    outputs = compute_outputs(model, io_in)

    out_dir.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    torch.save(state, out_dir / "weights.pt")  # as stable_worldmodel.wm.utils.save_pretrained
    torch.save(hf4_to_hf5(state), out_dir / "weights_hf5.pt")
    (out_dir / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    io = {**io_in, **{k: v.contiguous() for k, v in outputs.items()}}
    torch.save(io, out_dir / "io.pt")
    (out_dir / "README.md").write_text(readme(library_versions(), io, state))
    for key, value in io.items():
        LOG.info("io.pt %-28s %s", key, tuple(value.shape))
    LOG.info("state dict: %d keys, %d parameters+buffers", len(state), sum(v.numel() for v in state.values()))


def verify(out_dir: Path) -> None:
    """Rebuild from config.json with the library's load_pretrained and compare to io.pt."""
    from stable_worldmodel.wm.utils import load_pretrained

    major = transformers_major()
    weights = out_dir / ("weights.pt" if major == 4 else "weights_hf5.pt")
    # load_pretrained reads config.json beside the .pt, instantiates it with hydra and calls
    # load_state_dict(strict=True); an absolute name overrides the cache dir (unused: a scratch one).
    with tempfile.TemporaryDirectory() as cache_dir:
        model = load_pretrained(str(weights.resolve()), cache_dir=cache_dir)
    model.eval()
    io = torch.load(out_dir / "io.pt", weights_only=True)
    inputs = {k: io[k] for k in ("pixels", "actions", "goal_pixels", "candidates")}
    outputs = compute_outputs(model, inputs)
    worst = 0.0
    for key, value in outputs.items():
        err = (value - io[key]).abs().max().item()
        worst = max(worst, err)
        LOG.info("transformers %d %-28s max|diff| %.3e", major, key, err)
    if worst > ATOL:
        raise SystemExit(f"verification failed: max|diff| {worst:.3e} > {ATOL}")
    LOG.info("verified %s with transformers %d: max|diff| %.3e", weights.name, major, worst)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("test/fixtures/reference"))
    parser.add_argument("--verify", action="store_true", help="check the stored fixture instead of writing it")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.verify:
        verify(args.out)
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
