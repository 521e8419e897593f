"""Fit a goal-conditioned policy on a model's frozen latents (hindsight goals) and ship it in the
model directory.

    lewm-train fit-policy --model-dir models/tworoom_compact --data data/tworoom_policy

The world model is not changed: its encoder (eval mode) encodes every frame of the dataset once,
then an MLP learns (z_t, z_goal, blocks remaining) -> the next P action blocks [z-scored] from
hindsight pairs (:mod:`lewm_training.policy_data`), masked MSE, AdamW with a cosine schedule.
Written into the model directory: ``policy.pt``, ``policy_config.json`` (shape, the world
model's hash, the training record) and ``policy.onnx`` (verified against torch). Not resumable:
a fit takes minutes on a CPU (the steps and wall time are in the record); run it again instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from lewm_ros.model import load_metadata, load_model
from lewm_ros.model.policy import GoalPolicy, save_policy
from lewm_ros.runtime.onnx_manifest import model_hash, sha256_file
from lewm_ros.runtime.policy_export import export_policy_onnx
from lewm_ros.runtime.policy_format import GoalPolicyConfig
from lewm_ros.validation import check_int, check_ints, check_number, check_positive
from lewm_training.policy_data import EncodedEpisodes, encode_episodes, sample_pairs

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyFitConfig:
    """steps, batch_size: optimiser steps and pairs per step; lr, weight_decay: AdamW (cosine
    decay to 0 after warmup_steps); num_blocks P: blocks predicted; hidden_dim, depth: the MLP;
    max_goal_blocks: farthest hindsight goal [action blocks]; val_frac: held-out episodes;
    val_every: steps between validations; seed: pair sampling, split and init."""
    steps: int = 6000
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    num_blocks: int = 5
    hidden_dim: int = 512
    depth: int = 2
    max_goal_blocks: float = 10.0
    val_frac: float = 0.1
    val_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        check_ints('', self, ('steps', 'batch_size', 'num_blocks', 'hidden_dim', 'depth', 'val_every'), 1)
        check_int('warmup_steps', self.warmup_steps, 0)
        check_int('seed', self.seed, 0)
        for name in ('lr', 'max_goal_blocks'):
            check_positive(name, getattr(self, name))
        check_number('weight_decay', self.weight_decay, 0.0)
        check_number('val_frac', self.val_frac, 0.0, 1.0, exclusive_maximum=True)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error [z-scored^2] over the counted blocks: prediction, target (B, P, block);
    mask (B, P)."""
    per_block = F.mse_loss(prediction, target, reduction='none').mean(dim=-1)      # (B, P)
    return (per_block * mask).sum() / mask.sum().clamp(min=1.0)


def _learning_rate(cfg: PolicyFitConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def validation_loss(policy: GoalPolicy, data: EncodedEpisodes, cfg: PolicyFitConfig, frameskip: int,
                    batches: int = 8) -> float:
    """Masked MSE on ``batches`` fixed-seed batches of held-out pairs."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    losses = []
    for _ in range(batches):
        batch = sample_pairs(data, cfg.batch_size, cfg.num_blocks, frameskip, cfg.max_goal_blocks, gen)
        losses.append(float(masked_mse(policy(batch.latent, batch.goal, batch.remaining), batch.target, batch.mask)))
    return sum(losses) / len(losses)


def fit_policy(model_dir: str | Path, data: str | Path, cfg: PolicyFitConfig, progress: bool = True,
               command: str = '') -> GoalPolicyConfig:
    """Encode ``data`` with the model's frozen encoder, fit the policy, write it into the model
    directory (weights, config, verified ONNX); returns the written config."""
    from lewm_training.dataset import open_dataset, split_episodes
    started = time.perf_counter()
    model_dir = Path(model_dir)
    metadata = load_metadata(model_dir)
    model = load_model(model_dir, 'cpu').eval()
    dataset = open_dataset(data)
    train_eps, val_eps = split_episodes(dataset.num_episodes, cfg.val_frac, cfg.seed)
    train = encode_episodes(model, metadata, dataset, train_eps, progress=progress)
    val = encode_episodes(model, metadata, dataset, val_eps, progress=progress) if len(val_eps) else None
    torch.manual_seed(cfg.seed)
    config = GoalPolicyConfig(latent_dim=model.config.latent_dim, block_dim=metadata.block_dim,
                              num_blocks=cfg.num_blocks, hidden_dim=cfg.hidden_dim, depth=cfg.depth,
                              max_goal_blocks=cfg.max_goal_blocks, model_hash=model_hash(model_dir))
    policy = GoalPolicy(config)
    optimiser = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    val_mse = float('nan')
    bar = tqdm(range(cfg.steps), desc='fit-policy', unit='step', disable=not progress)
    for step in bar:
        for group in optimiser.param_groups:
            group['lr'] = _learning_rate(cfg, step)
        batch = sample_pairs(train, cfg.batch_size, cfg.num_blocks, metadata.frameskip, cfg.max_goal_blocks, gen)
        loss = masked_mse(policy(batch.latent, batch.goal, batch.remaining), batch.target, batch.mask)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if val is not None and ((step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps):
            policy.eval()
            val_mse = validation_loss(policy, val, cfg, metadata.frameskip)
            policy.train()
            LOG.info('step %d/%d: train mse %.4f, val mse %.4f', step + 1, cfg.steps, loss.item(), val_mse)
        bar.set_postfix(loss=f'{loss.item():.4f}', val=f'{val_mse:.4f}')
    policy.eval()
    weights = save_policy(policy, model_dir)
    training = {'command': command, 'data': str(data), 'train_episodes': len(train_eps),
                'val_episodes': len(val_eps), 'train_frames': train.num_frames, 'final_train_mse': loss.item(),
                'val_mse': val_mse, 'wall_time_s': round(time.perf_counter() - started, 1),
                'settings': dataclasses.asdict(cfg)}
    config = dataclasses.replace(config, weights_sha256=sha256_file(weights), training=training)
    config.save(model_dir)
    export_policy_onnx(model_dir)
    LOG.info('policy written to %s (%d parameters, val mse %.4f, %.0f s)', model_dir,
             sum(p.numel() for p in policy.parameters()), val_mse, time.perf_counter() - started)
    return GoalPolicyConfig.load(model_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PolicyFitConfig()
    parser.add_argument('--model-dir', required=True, help='model directory (its policy is written there)')
    parser.add_argument('--data', required=True, help='episode dataset (lewm-train collect / import-bag)')
    for field in dataclasses.fields(PolicyFitConfig):
        parser.add_argument(f'--{field.name.replace("_", "-")}', type=type(getattr(defaults, field.name)),
                            default=getattr(defaults, field.name), help=f'(default: {getattr(defaults, field.name)})')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar (log lines only)')


def run(args: argparse.Namespace) -> int:
    try:
        cfg = PolicyFitConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PolicyFitConfig)})
    except ValueError as exc:
        raise SystemExit(f'lewm-train fit-policy: {exc}') from None
    if args.threads:
        torch.set_num_threads(args.threads)
    command = shlex.join(['lewm-train', 'fit-policy', *sys.argv[2:]])
    config = fit_policy(args.model_dir, args.data, cfg, progress=not args.no_progress, command=command)
    print(f"policy: val mse {config.training['val_mse']:.4f}, {config.training['wall_time_s']:.0f} s, "
          f'written to {args.model_dir}')
    return 0
