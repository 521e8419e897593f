"""Training logs: CSV files, TensorBoard (when installed), a tqdm bar, log lines with rate and
ETA, and the collapse monitor (effective rank + per-dimension std of the embeddings)."""
from __future__ import annotations

import contextlib
import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

LOG = logging.getLogger(__name__)

TRAIN_COLUMNS = ('step', 'loss', 'pred', 'sigreg', 'lr', 'grad_norm', 'steps_per_s', 'emb_rank', 'emb_min_std',
                 'emb_mean_std')
VAL_COLUMNS = ('step', 'val_loss', 'val_pred', 'val_sigreg', 'val_emb_rank')


@dataclass(frozen=True)
class EmbeddingStats:
    """Collapse monitor of latents: effective_rank in [1, D] (exp of the entropy of the normalised
    covariance eigenvalues; D for isotropic, 1 for a line); min_std / mean_std over dimensions."""
    effective_rank: float
    min_std: float
    mean_std: float
    dim: int


def embedding_stats(emb: torch.Tensor) -> EmbeddingStats:
    """emb (..., D) -> collapse statistics over all leading positions (float64, no gradient)."""
    z = emb.detach().reshape(-1, emb.shape[-1]).double()
    z = z - z.mean(0)
    cov = z.T @ z / max(1, z.shape[0] - 1)
    eig = torch.linalg.eigvalsh(cov).clamp_min(0)
    total = eig.sum()
    if not total > 0:
        rank = 0.0
    else:
        p = eig / total
        rank = float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))
    std = cov.diagonal().sqrt()
    return EmbeddingStats(effective_rank=rank, min_std=float(std.min()), mean_std=float(std.mean()),
                          dim=emb.shape[-1])


class CsvLog:
    """Append-only CSV with a header. Existing rows up to ``keep_until`` (the resumed step) are
    kept; later ones belonged to a killed run and will be recomputed."""

    def __init__(self, path: Path, columns: tuple[str, ...], keep_until: int) -> None:
        self.path = path
        self.columns = columns
        kept: list[dict[str, str]] = []
        if path.exists():
            with path.open(newline='') as fh:
                kept = [row for row in csv.DictReader(fh) if int(row['step']) <= keep_until]
        with path.open('w', newline='') as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: dict[str, float]) -> None:
        with self.path.open('a', newline='') as fh:
            csv.DictWriter(fh, fieldnames=self.columns).writerow(
                {k: (f'{v:.6g}' if isinstance(v, float) else v) for k, v in row.items()})


class TensorBoard:
    """SummaryWriter when tensorboard is installed and enabled, else a no-op with one log line."""

    def __init__(self, directory: Path, enabled: bool) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            LOG.info('TensorBoard logging off (%s); CSV logs only', exc)
            return
        self.writer = SummaryWriter(str(directory))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                if key != 'step' and math.isfinite(value):
                    self.writer.add_scalar(f'{prefix}/{key}', value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f'{hours}h{rest // 60:02d}m' if hours else f'{rest // 60}m{rest % 60:02d}s'


class Progress:
    """tqdm bar (main rank, when enabled) showing the loss terms and throughput."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit='step', dynamic_ncols=True, desc='fit')

    def redirect_logging(self):
        """Context in which log lines print above the bar instead of breaking it."""
        if self.bar is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm
        return logging_redirect_tqdm()

    def update(self, loss: float, pred: float, sigreg: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f'{loss:.4f}', pred=f'{pred:.4f}', sigreg=f'{sigreg:.3f}', refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
