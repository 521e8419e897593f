"""TrainConfig: every setting of one ``lewm-train fit`` run, validated once, saved as
``train_config.json`` in the run directory.

Learning-rate default: the paper's AdamW lr 5e-5 (batch 128, ~70k steps) for the 'paper'
preset; 5e-4 for 'compact'. Why 10x: the compact model is ~10x smaller with width-128
transformers (narrow layers tolerate a larger step; the usual width scaling of Adam lr), and a
CPU budget affords a few thousand steps, an order of magnitude fewer than the paper's, so the
same total parameter movement needs a larger step. Warm-up + cosine + grad-clip 1.0 keep the
start stable.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from lewm_ros.jsonio import JsonRecord
from lewm_ros.validation import check_choice, check_number, check_positive, require

CONFIG_FILE = 'train_config.json'
DEFAULT_LR = {'paper': 5e-5, 'compact': 5e-4}

#: Fields a resumed run may change (they do not alter the optimisation trajectory; ``steps``
#: changes the cosine schedule and is allowed with a warning).
RESUME_MUTABLE = frozenset({'steps', 'checkpoint_every', 'val_every', 'log_every', 'num_workers', 'progress',
                            'tensorboard', 'threads', 'resume', 'bn_recal_windows', 'val_batches',
                            'rank_warn_frac', 'std_warn', 'keep_snapshots'})


@dataclass
class TrainConfig(JsonRecord):
    """One training run.

    data: dataset directory (``lewm-train collect`` output) or ``synthetic[:key=value,...]``;
    out: run directory (checkpoint.pt, train.csv, val.csv, tb/, model/);
    preset: 'compact' or 'paper' model sizes; model_config: optional reference ``config.json``
    overriding the preset's sizes (action encoder width must match the data);
    steps: optimiser steps; batch_size: GLOBAL batch (split evenly over DDP ranks) [windows];
    lr: peak AdamW learning rate (None: preset default, see module doc); weight_decay: AdamW;
    warmup_steps: linear warm-up steps (None: 5% of steps, at most 1000), then cosine to
    min_lr_frac * lr; grad_clip: max global grad norm; lam: SIGReg weight (0.09 reference);
    sigreg_knots / sigreg_proj: SIGReg integration knots / random directions per step;
    history: frames the predictor sees (window = history + 1 frames); frameskip: raw actions per
    block; val_frac / split_seed: episode split; seed: model init, data order and SIGReg directions;
    device: 'auto' | 'cpu' | 'cuda'; amp: bf16 autocast (CUDA only; ignored on CPU);
    num_workers: DataLoader workers per rank; threads: torch CPU threads (0: torch default);
    log_every / val_every / checkpoint_every [steps]; val_batches: batches per validation;
    bn_recal_windows: train windows used to recalibrate BatchNorm statistics before each export;
    rank_warn_frac: warn when the embedding effective rank < rank_warn_frac * D (a rank is
    scale-free, so it misses a collapse to a point); std_warn: warn when the mean per-dimension std
    of the embeddings < std_warn (SIGReg's target is 1; without it they shrink towards a point);
    tensorboard: write TensorBoard events when the package is installed; progress: tqdm bar;
    resume: continue from ``out/checkpoint.pt`` when present (else refuse to overwrite it);
    keep_snapshots: also keep each checkpoint's exported model in ``out/snapshots/step_NNNNNN/``
    (``lewm-train eval-snapshots`` draws success against training steps from them).
    """
    FILE_NAME: ClassVar[str] = CONFIG_FILE
    DESCRIPTION: ClassVar[str] = 'train config'
    data: str
    out: str
    preset: str = 'compact'
    model_config: str | None = None
    steps: int = 6000
    batch_size: int = 64
    lr: float | None = None
    weight_decay: float = 1e-3
    warmup_steps: int | None = None
    min_lr_frac: float = 0.0
    grad_clip: float = 1.0
    lam: float = 0.09
    sigreg_knots: int = 17
    sigreg_proj: int = 1024
    history: int = 3
    frameskip: int = 5
    val_frac: float = 0.1
    split_seed: int = 0
    seed: int = 0
    device: str = 'auto'
    amp: bool = True
    num_workers: int = 0
    threads: int = 0
    log_every: int = 50
    val_every: int = 500
    val_batches: int = 8
    checkpoint_every: int = 500
    bn_recal_windows: int = 512
    rank_warn_frac: float = 0.25
    std_warn: float = 0.05
    tensorboard: bool = True
    progress: bool = True
    resume: bool = True
    keep_snapshots: bool = False

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = DEFAULT_LR.get(self.preset, DEFAULT_LR['compact'])
        if self.warmup_steps is None:
            self.warmup_steps = min(1000, self.steps // 20)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field, its value and the allowed range."""
        require(bool(self.data), 'data', self.data, 'a dataset directory or "synthetic[:...]"')
        require(bool(self.out), 'out', self.out, 'a run directory')
        if self.preset not in DEFAULT_LR:
            raise ValueError(f'preset={self.preset!r} is not allowed; choose one of {sorted(DEFAULT_LR)}')
        check_choice('device', self.device, ('auto', 'cpu', 'cuda'))
        for name in ('steps', 'batch_size', 'history', 'frameskip', 'log_every', 'val_every', 'checkpoint_every',
                     'val_batches', 'sigreg_proj'):
            require(getattr(self, name) >= 1, name, getattr(self, name), '>= 1')
        for name in ('num_workers', 'threads', 'bn_recal_windows', 'warmup_steps'):
            require(getattr(self, name) >= 0, name, getattr(self, name), '>= 0')
        require(self.warmup_steps <= self.steps, 'warmup_steps', self.warmup_steps, f'<= steps ({self.steps})')
        require(self.sigreg_knots >= 2, 'sigreg_knots', self.sigreg_knots, '>= 2')
        check_number('lr', self.lr, 0.0, 1.0, exclusive_minimum=True)
        check_number('weight_decay', self.weight_decay, 0.0, 1.0, exclusive_maximum=True)
        check_number('min_lr_frac', self.min_lr_frac, 0.0, 1.0)
        check_positive('grad_clip', self.grad_clip)
        check_number('lam', self.lam, 0.0, 10.0)
        require(0 <= self.val_frac < 1, 'val_frac', self.val_frac, '[0, 1)')
        check_number('rank_warn_frac', self.rank_warn_frac, 0.0, 1.0)
        check_number('std_warn', self.std_warn, 0.0)

    # ----- schedule ------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` for optimiser step ``step`` (0-based): linear warm-up from
        1/warmup to 1, then cosine from 1 to ``min_lr_frac`` at ``steps``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr_frac + (1 - self.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))

    # ----- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'TrainConfig':
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f'train config has unknown key(s) {unknown}; allowed: {sorted(allowed)}')
        return cls(**data)

    def resume_conflicts(self, saved: 'TrainConfig') -> list[str]:
        """Fields that differ from the checkpointed run and would change its trajectory."""
        return [f'{f.name}: checkpoint has {getattr(saved, f.name)!r}, now {getattr(self, f.name)!r}'
                for f in dataclasses.fields(self)
                if f.name not in RESUME_MUTABLE and getattr(saved, f.name) != getattr(self, f.name)]

