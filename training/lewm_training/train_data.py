"""Training data for ``lewm-train fit``: episode split, windows, action statistics of the TRAIN
split, a resumable (and rank-sharded) batch order, and batch normalisation on the device.

The batch order is a pure function of (seed, epoch, rank, world_size): every epoch is a seeded
permutation of the train windows, dealt round-robin to ranks (DistributedSampler semantics,
drop-last) and cut into per-rank batches. Step s reads batch ``s % batches_per_epoch`` of epoch
``s // batches_per_epoch``, so a resumed run continues from the exact sampler position with no
extra state.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lewm_ros.model import normalize_images
from lewm_training import dataset as episode_data
from lewm_training import synthetic
from lewm_training.dataset_format import DatasetInfo

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitInfo:
    """The train/val split of one dataset, as the model metadata needs it.

    dataset: the data's :class:`~lewm_training.dataset_format.DatasetInfo` (task, image_size
    [px], action_dim A, dt [s per raw step], action bounds (A,) [raw units], ...);
    action_mean / action_std: (A,) [raw units] over the TRAIN episodes (std floored at 1e-6);
    train_episodes / val_episodes: episode counts; train_windows / val_windows: window counts.
    """
    dataset: DatasetInfo
    action_mean: tuple[float, ...]
    action_std: tuple[float, ...]
    train_episodes: int
    val_episodes: int
    train_windows: int
    val_windows: int


@dataclass(frozen=True)
class TrainData:
    """train / val: window datasets (val None when the split has no val episode)."""
    train: Dataset
    val: Dataset | None
    info: SplitInfo


def load_training_data(spec: str, history: int, frameskip: int, val_frac: float, split_seed: int,
                       image_size: int) -> TrainData:
    """Open ``spec`` (dataset directory or ``synthetic[:...]``), split episodes, build windows of
    history + 1 frames and compute action statistics on the train episodes only.

    image_size: the model's input side [px]; a dataset of another size is an error.
    """
    if synthetic.is_synthetic_spec(spec):
        source = synthetic.SyntheticDots(synthetic.parse_spec(spec, image_size))
        n_episodes = len(source)
    else:
        source = episode_data.open_dataset(spec)
        n_episodes = source.num_episodes
    meta = source.metadata
    if int(meta.image_size) != image_size:
        raise ValueError(f'data {spec!r} has image_size {meta.image_size} but the model expects {image_size}; '
                         'collect at the model size or choose a matching preset/model_config')
    train_eps, val_eps = episode_data.split_episodes(n_episodes, val_frac=val_frac, seed=split_seed)
    train = _windows(source, train_eps, history, frameskip)
    val = _windows(source, val_eps, history, frameskip) if len(val_eps) else None
    if len(train) == 0:
        raise ValueError(f'data {spec!r}: no training window of {history + 1} frames x frameskip {frameskip} '
                         f'in {len(train_eps)} train episodes (episodes too short?)')
    if val is not None and len(val) == 0:
        val = None
    if isinstance(source, synthetic.SyntheticDots):
        mean, std = source.action_stats([int(e) for e in train_eps])
    else:
        mean, std = episode_data.action_stats(source, train_eps)
    std = np.maximum(np.asarray(std, np.float64), 1e-6)
    info = SplitInfo(dataset=meta, action_mean=tuple(float(v) for v in mean),
                     action_std=tuple(float(v) for v in std), train_episodes=len(train_eps),
                     val_episodes=len(val_eps), train_windows=len(train), val_windows=0 if val is None else len(val))
    LOG.info('data %s: %d train episodes (%d windows), %d val episodes (%d windows), task %s', spec,
             info.train_episodes, info.train_windows, info.val_episodes, info.val_windows, meta.task)
    return TrainData(train=train, val=val, info=info)


def _windows(source, episodes: np.ndarray, history: int, frameskip: int) -> Dataset:
    """Windows of history + 1 frames inside ``episodes`` of a dataset or synthetic source."""
    chosen = [int(e) for e in episodes]
    if isinstance(source, synthetic.SyntheticDots):
        return source.windows(history, frameskip, chosen)
    return episode_data.WindowDataset(source, history=history, num_preds=1, frameskip=frameskip, episodes=chosen)


class BatchOrder:
    """Per-rank batches of window indices, a pure function of (seed, epoch, rank, world_size).

    Every rank gets ``batches_per_epoch`` batches of ``rank_batch`` windows per epoch.
    """

    def __init__(self, num_windows: int, rank_batch: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_windows = num_windows
        self.rank_batch = rank_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = num_windows // (rank_batch * world_size)
        if self.batches_per_epoch < 1:
            raise ValueError(f'batch_size={rank_batch * world_size} is larger than the {num_windows} '
                             'training windows; lower batch_size or add data')

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """(batches_per_epoch, rank_batch) window indices of this rank for ``epoch``."""
        perm = torch.randperm(self.num_windows, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
        used = self.batches_per_epoch * self.rank_batch * self.world_size
        mine = perm[:used].numpy()[self.rank::self.world_size]
        return mine.reshape(self.batches_per_epoch, self.rank_batch)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) read at optimiser step ``step`` (0-based)."""
        return divmod(step, self.batches_per_epoch)


def collate_windows(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Window items -> pixels uint8 (B, T, S, S, 3), raw action blocks float32 (B, T, k*A)."""
    pixels = torch.stack([torch.as_tensor(item.pixels) for item in items])
    actions = torch.stack([torch.as_tensor(item.actions, dtype=torch.float32) for item in items])
    return pixels, actions


def batch_stream(data: Dataset, order: BatchOrder, start_step: int, num_workers: int, seed: int,
                 pin_memory: bool = False):
    """Yield (pixels, raw blocks) for optimiser steps start_step, start_step + 1, ... forever.

    One DataLoader per epoch over this rank's remaining batches; its own generator seeds the
    workers, so the global torch RNG (dropout) is left alone and resume stays exact.
    """
    epoch, offset = order.position(start_step)
    while True:
        batches = order.epoch_batches(epoch)[offset:].tolist()
        loader = DataLoader(data, batch_sampler=batches, num_workers=num_workers, collate_fn=collate_windows,
                            pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed + epoch),
                            persistent_workers=False)
        yield from loader
        epoch, offset = epoch + 1, 0


class BatchNormaliser:
    """uint8 pixels -> ImageNet-normalised float (B, T, 3, S, S); raw blocks -> z-scored blocks
    (B, T, k*A) with the TRAIN action statistics (same arithmetic as
    ``ModelMetadata.normalize_blocks``), on ``device``."""

    def __init__(self, action_mean: tuple[float, ...], action_std: tuple[float, ...], device: torch.device) -> None:
        self.mean = torch.tensor(action_mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(action_std, dtype=torch.float32, device=device)
        self.device = device

    def __call__(self, pixels: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = normalize_images(pixels.to(self.device, non_blocking=True))
        raw = actions.to(self.device, non_blocking=True)
        shaped = raw.reshape(*raw.shape[:-1], -1, self.mean.numel())               # (B, T, k, A)
        blocks = ((shaped - self.mean) / self.std).reshape(raw.shape)               # (B, T, k*A) [z-scored]
        return pixels, blocks
