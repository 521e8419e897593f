"""What ``lewm-train fit`` does to a model snapshot at a checkpoint: BatchNorm recalibration,
the validation loss, the model metadata shipped with the weights; and the bf16 autocast both
training and validation run under."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from lewm_ros.model import LeWM, ModelMetadata
from lewm_training.loss import lewm_loss
from lewm_training.sigreg import SIGReg
from lewm_training.train_config import TrainConfig
from lewm_training.train_data import BatchNormaliser, SplitInfo, collate_windows
from lewm_training.train_logging import embedding_stats

VAL_SIGREG_SEED_OFFSET = 7919
"""Validation draws its SIGReg directions from ``seed + VAL_SIGREG_SEED_OFFSET`` (fixed across validations)."""


def recalibrate_batchnorm(model: LeWM, data: torch.utils.data.Dataset, normaliser: BatchNormaliser,
                          windows: int, batch_size: int, seed: int, num_workers: int = 0) -> LeWM:
    """Replace every BatchNorm's running statistics by the exact average over ``windows`` train
    windows (momentum=None cumulative averaging), everything else in eval mode, no gradient.

    The running statistics kept during training are an EMA of batches seen by a moving network;
    LEWM.md reports 8x lower prediction error after this step. Returns ``model`` in eval mode.
    """
    if windows == 0:
        return model.eval()
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(data), generator=generator)[:windows].tolist()
    loader = DataLoader(Subset(data, chosen), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_windows, generator=generator)
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for pixels, actions in loader:
            model(*normaliser(pixels, actions))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


def evaluate(model: LeWM, data: torch.utils.data.Dataset, normaliser: BatchNormaliser, cfg: TrainConfig,
             batch_size: int, device: torch.device) -> dict[str, float]:
    """Mean loss terms over up to ``cfg.val_batches`` batches of evenly spaced val windows (eval
    mode, fixed SIGReg directions so successive validations compare)."""
    count = min(len(data), cfg.val_batches * batch_size)
    chosen = np.linspace(0, len(data) - 1, count).round().astype(int).tolist()
    loader = DataLoader(Subset(data, chosen), batch_size=batch_size, collate_fn=collate_windows,
                        num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
    sigreg = SIGReg(knots=cfg.sigreg_knots, num_proj=cfg.sigreg_proj,
                    seed=cfg.seed + VAL_SIGREG_SEED_OFFSET).to(device)
    totals = torch.zeros(3, dtype=torch.float64)
    embs = []
    model.eval()
    with torch.no_grad(), autocast(device, cfg.amp):
        for pixels, actions in loader:
            terms = lewm_loss(model, *normaliser(pixels, actions), sigreg, cfg.lam)
            totals += torch.stack([terms.total, terms.pred, terms.sigreg]).double().cpu() * len(pixels)
            embs.append(terms.emb.float())
    loss, pred, sig = (totals / count).tolist()
    return {'val_loss': loss, 'val_pred': pred, 'val_sigreg': sig,
            'val_emb_rank': embedding_stats(torch.cat(embs)).effective_rank}


def build_metadata(cfg: TrainConfig, info: SplitInfo, step: int, elapsed_s: float, command: str,
                   val: dict[str, float]) -> ModelMetadata:
    data = info.dataset
    return ModelMetadata(
        action_dim=data.action_dim, frameskip=cfg.frameskip, history=cfg.history, image_size=data.image_size,
        action_mean=list(info.action_mean), action_std=list(info.action_std),
        action_low=data.action_low.tolist(), action_high=data.action_high.tolist(), task=data.task,
        preset=f'custom:{Path(cfg.model_config).name}' if cfg.model_config else cfg.preset,
        extra={'training_command': command, 'data': cfg.data, 'train_episodes': info.train_episodes,
               'train_windows': info.train_windows, 'val_episodes': info.val_episodes, 'dt': data.dt,
               'steps': step, 'batch_size': cfg.batch_size, 'lr': cfg.lr, 'lam': cfg.lam,
               'wall_time_s': round(elapsed_s, 1), 'bn_recalibrated_windows': cfg.bn_recal_windows,
               **{k: round(v, 6) for k, v in val.items()},
               # the task's constructor options of the data (collect --task-arg), when there were any
               **({'task_kwargs': dict(data.task_kwargs)} if data.task_kwargs else {}),
               # recorded data: what the robot needs to run the model as the data was recorded
               **({'deployment': data.deployment.to_dict()} if data.deployment is not None else {})})


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; a disabled context on CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == 'cuda')
