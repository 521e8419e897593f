"""Train a LeWM world model on a collected dataset (resumable, DDP-aware).

    lewm-train fit --data data/tworoom --out runs/tworoom_compact --preset compact --steps 6000
    torchrun --nproc-per-node 2 -m lewm_training.cli fit --data ... --out ...   (DDP)

The run directory holds train_config.json, checkpoint.pt (resumable state, every
--checkpoint-every steps and at the end), train.csv / val.csv, tb/ (TensorBoard) and model/
(config.json + weights.pt + lewm_meta.json, exported with recalibrated BatchNorm statistics at
every checkpoint; with --keep-snapshots also in snapshots/step_NNNNNN/, for
``lewm-train eval-snapshots``). Running the same command again resumes from checkpoint.pt exactly.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lewm_ros.model import LeWM, LeWMConfig, count_parameters, preset, save_model_dir
from lewm_training.distributed import DistContext, convert_batchnorm, init_distributed, mean_over_ranks
from lewm_training.loss import lewm_loss
from lewm_training.sigreg import SIGReg
from lewm_training.train_config import TrainConfig
from lewm_training.train_data import BatchNormaliser, BatchOrder, TrainData, batch_stream, load_training_data
from lewm_training.train_eval import autocast, build_metadata, evaluate, recalibrate_batchnorm
from lewm_training.train_logging import (TRAIN_COLUMNS, VAL_COLUMNS, CsvLog, EmbeddingStats, Progress,
                                         TensorBoard, embedding_stats, format_duration)
from lewm_training.train_state import capture_rng, load_checkpoint, restore_rng, save_checkpoint

LOG = logging.getLogger(__name__)
MODEL_DIR = 'model'
SNAPSHOT_DIR = 'snapshots'
"""Run subfolder of the kept snapshots, one ``step_NNNNNN`` model directory per checkpoint."""


@dataclass(frozen=True)
class FitResult:
    """step: optimiser steps done; model_dir: exported model; val: last validation metrics
    (empty without a val split); elapsed_s: training wall time over all resumed segments [s]."""
    step: int
    model_dir: Path
    val: dict[str, float]
    elapsed_s: float


# ----- model ---------------------------------------------------------------------------------
def model_config(cfg: TrainConfig, action_dim: int) -> LeWMConfig:
    """The preset (or ``cfg.model_config`` file) for this data's action width; checks history and
    action block width against the run settings."""
    if cfg.model_config:
        path = Path(cfg.model_config)
        try:
            config = LeWMConfig.from_reference_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f'model_config {path}: {exc}') from exc
    else:
        config = preset(cfg.preset, action_dim=action_dim, frameskip=cfg.frameskip)
    if config.predictor.num_frames != cfg.history:
        raise ValueError(f'history={cfg.history} must equal the model predictor.num_frames '
                         f'({config.predictor.num_frames})')
    block = action_dim * cfg.frameskip
    if config.action_encoder.input_dim != block:
        raise ValueError(f'model action_encoder.input_dim ({config.action_encoder.input_dim}) must equal '
                         f'frameskip x action_dim = {cfg.frameskip} x {action_dim} = {block}')
    return config


def image_size_of(cfg: TrainConfig) -> int:
    if cfg.model_config:
        return LeWMConfig.from_reference_dict(json.loads(Path(cfg.model_config).read_text())).encoder.image_size
    return preset(cfg.preset).encoder.image_size


# ----- the run -----------------------------------------------------------------------------
class Trainer:
    """One rank's training state and loop; see :func:`fit`."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext, command: str) -> None:
        if cfg.batch_size % ctx.world_size:
            raise ValueError(f'batch_size={cfg.batch_size} must be divisible by the DDP world size '
                             f'({ctx.world_size}); it is the GLOBAL batch')
        self.cfg, self.ctx, self.command = cfg, ctx, command
        self.out = Path(cfg.out)
        self.rank_batch = cfg.batch_size // ctx.world_size
        self.data: TrainData = load_training_data(cfg.data, cfg.history, cfg.frameskip, cfg.val_frac,
                                                  cfg.split_seed, image_size_of(cfg))
        self.info = self.data.info
        self.config = model_config(cfg, self.info.dataset.action_dim)
        torch.manual_seed(cfg.seed)                       # identical initial weights on every rank
        self.model = LeWM(self.config).to(ctx.device)
        self.normaliser = BatchNormaliser(self.info.action_mean, self.info.action_std, ctx.device)
        self.order = BatchOrder(len(self.data.train), self.rank_batch, cfg.seed, ctx.rank, ctx.world_size)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: cfg.lr_factor(s))
        self.sigreg = SIGReg(knots=cfg.sigreg_knots, num_proj=cfg.sigreg_proj, gather=ctx.distributed,
                             seed=cfg.seed).to(ctx.device)
        self.step = 0
        self.elapsed_s = 0.0
        self.val: dict[str, float] = {}
        seed_everything(cfg.seed * 1009 + 1 + ctx.rank)   # dropout etc.: its own stream per rank
        self._resume()
        self.net: nn.Module = self.model
        if ctx.distributed:
            convert_batchnorm(self.model)
            self.net = DistributedDataParallel(
                self.model, device_ids=[ctx.local_rank] if ctx.device.type == 'cuda' else None)
        LOG.info('model %s: %.2fM parameters, latent D=%d; %d steps at global batch %d (%d per rank x %d), '
                 'lr %.2g, warm-up %d', self.info.dataset.task, count_parameters(self.model) / 1e6,
                 self.config.latent_dim, cfg.steps, cfg.batch_size, self.rank_batch, ctx.world_size, cfg.lr,
                 cfg.warmup_steps)

    def _resume(self) -> None:
        state = load_checkpoint(self.out)
        if state is None:
            return
        if not self.cfg.resume:
            raise ValueError(f'{self.out} already holds a checkpoint at step {state["step"]}; '
                             'resume it (drop --no-resume) or choose another --out')
        saved = TrainConfig.from_dict(state['config'])
        conflicts = self.cfg.resume_conflicts(saved)
        if conflicts:
            raise ValueError(f'cannot resume {self.out}: settings differ from the checkpointed run: '
                             + '; '.join(conflicts))
        if saved.steps != self.cfg.steps:
            LOG.warning('resuming with steps=%d (was %d): the cosine schedule changes from here on',
                        self.cfg.steps, saved.steps)
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.sigreg.calls = int(state['sigreg_calls'])
        self.step, self.elapsed_s = int(state['step']), float(state['elapsed_s'])
        self.val = dict(state.get('val', {}))
        if int(state['world_size']) == self.ctx.world_size:
            restore_rng(state['rng'][self.ctx.rank])
        else:
            LOG.warning('checkpoint was written by %d ranks, now %d: random streams restart (data order and '
                        'SIGReg directions are unaffected)', state['world_size'], self.ctx.world_size)
        LOG.info('resumed %s at step %d (%s of training so far)', self.out, self.step,
                 format_duration(self.elapsed_s))

    # ----- one step -----------------------------------------------------------------------
    def train_step(self, pixels: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor]:
        """One optimiser step on this rank's batch -> (loss terms (3,) [total, pred, sigreg],
        global grad norm before clipping, embeddings (B, T, D) detached)."""
        self.net.train()
        pixels, blocks = self.normaliser(pixels, actions)
        with autocast(self.ctx.device, self.cfg.amp):
            terms = lewm_loss(self.net, pixels, blocks, self.sigreg, self.cfg.lam)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return torch.stack([terms.total, terms.pred, terms.sigreg]).detach().float(), grad_norm, terms.emb.detach()

    # ----- loop ---------------------------------------------------------------------------
    def run(self) -> FitResult:
        cfg, main = self.cfg, self.ctx.is_main
        if self.step >= cfg.steps:
            LOG.info('%s is already trained to step %d (>= steps=%d)', self.out, self.step, cfg.steps)
            return FitResult(self.step, self.out / MODEL_DIR, self.val, self.elapsed_s)
        if main:
            cfg.save(self.out)
            train_csv = CsvLog(self.out / 'train.csv', TRAIN_COLUMNS, keep_until=self.step)
            val_csv = CsvLog(self.out / 'val.csv', VAL_COLUMNS, keep_until=self.step)
            board = TensorBoard(self.out / 'tb', cfg.tensorboard)
        progress = Progress(cfg.steps, self.step, cfg.progress and main)
        stream = batch_stream(self.data.train, self.order, self.step, cfg.num_workers, cfg.seed,
                              pin_memory=self.ctx.device.type == 'cuda')
        try:
            with progress.redirect_logging():
                self._loop(stream, progress, train_csv if main else None, val_csv if main else None,
                           board if main else None)
        finally:
            progress.close()
            if main:
                board.close()
        return FitResult(self.step, self.out / MODEL_DIR, self.val, self.elapsed_s)

    def _loop(self, stream, progress: Progress, train_csv: CsvLog | None, val_csv: CsvLog | None,
              board: TensorBoard | None) -> None:
        cfg, main = self.cfg, self.ctx.is_main
        interval_terms = torch.zeros(3)
        interval_steps, interval_time, interval_norm = 0, 0.0, 0.0
        while self.step < cfg.steps:
            start = time.perf_counter()               # data wait + step; validation/checkpoints excluded
            pixels, actions = next(stream)
            terms, grad_norm, emb = self.train_step(pixels, actions)
            values = terms.cpu()
            if not torch.isfinite(values).all():
                raise FloatingPointError(f'non-finite loss {values.tolist()} at step {self.step}')
            took = time.perf_counter() - start
            self.elapsed_s += took
            interval_time += took
            interval_terms += values
            interval_steps += 1
            interval_norm += grad_norm
            progress.update(*values.tolist())
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean_terms = mean_over_ranks(interval_terms / interval_steps).tolist()
                stats = embedding_stats(emb)
                row = {'step': self.step, 'loss': mean_terms[0], 'pred': mean_terms[1], 'sigreg': mean_terms[2],
                       'lr': self.scheduler.get_last_lr()[0], 'grad_norm': interval_norm / interval_steps,
                       'steps_per_s': interval_steps / max(interval_time, 1e-9),
                       'emb_rank': stats.effective_rank, 'emb_min_std': stats.min_std,
                       'emb_mean_std': stats.mean_std}
                if main:
                    self._log_line(row, stats)
                    train_csv.write(row)
                    board.scalars('train', row, self.step)
                interval_terms.zero_()
                interval_steps, interval_time, interval_norm = 0, 0.0, 0.0
            due_val = self.data.val is not None and (self.step % cfg.val_every == 0 or self.step == cfg.steps)
            due_ckpt = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            if due_val or due_ckpt:
                self._checkpoint(due_val, due_ckpt, val_csv, board)

    def _log_line(self, row: dict[str, float], stats: EmbeddingStats) -> None:
        remaining = (self.cfg.steps - self.step) / max(row['steps_per_s'], 1e-9)
        LOG.info('step %d/%d  loss %.4f (pred %.4f, sigreg %.3f)  lr %.2e  |g| %.2f  %.2f steps/s  ETA %s  '
                 'emb rank %.1f/%d, std min %.3f mean %.3f', self.step, self.cfg.steps, row['loss'], row['pred'],
                 row['sigreg'], row['lr'], row['grad_norm'], row['steps_per_s'], format_duration(remaining),
                 stats.effective_rank, stats.dim, stats.min_std, stats.mean_std)
        if stats.effective_rank < self.cfg.rank_warn_frac * stats.dim or stats.mean_std < self.cfg.std_warn:
            LOG.warning('possible representation collapse at step %d: embedding effective rank %.1f (warn below '
                        '%.2f x D=%d), per-dim std mean %.3g min %.3g (warn below %g); consider a larger lam '
                        '(SIGReg weight, now %g)', self.step, stats.effective_rank, self.cfg.rank_warn_frac,
                        stats.dim, stats.mean_std, stats.min_std, self.cfg.std_warn, self.cfg.lam)

    def _checkpoint(self, due_val: bool, due_ckpt: bool, val_csv: CsvLog | None, board: TensorBoard | None) -> None:
        """Validation and/or checkpoint + export, on the main rank, with a BatchNorm-recalibrated
        copy of the model (the training model's own buffers stay untouched, so resume is exact)."""
        rngs = [capture_rng()]
        if self.ctx.distributed:
            rngs = [None] * self.ctx.world_size
            dist.all_gather_object(rngs, capture_rng())
        if self.ctx.is_main:
            # fork_rng: building the snapshot draws initial weights; the training streams must not move.
            with torch.random.fork_rng(devices=[self.ctx.device] if self.ctx.device.type == 'cuda' else []):
                self._evaluate_and_export(due_val, due_ckpt, rngs, val_csv, board)
        if self.ctx.distributed:
            dist.barrier()

    def _evaluate_and_export(self, due_val: bool, due_ckpt: bool, rngs: list, val_csv: CsvLog,
                             board: TensorBoard) -> None:
        snapshot = LeWM(self.config).to(self.ctx.device)
        snapshot.load_state_dict(self.model.state_dict())
        recalibrate_batchnorm(snapshot, self.data.train, self.normaliser, self.cfg.bn_recal_windows,
                              self.rank_batch, self.cfg.seed, self.cfg.num_workers)
        if due_val:
            self.val = evaluate(snapshot, self.data.val, self.normaliser, self.cfg, self.rank_batch,
                                self.ctx.device)
            LOG.info('step %d validation: loss %.4f (pred %.4f, sigreg %.3f), emb rank %.1f', self.step,
                     self.val['val_loss'], self.val['val_pred'], self.val['val_sigreg'], self.val['val_emb_rank'])
            val_csv.write({'step': self.step, **self.val})
            board.scalars('val', self.val, self.step)
        if due_ckpt:
            meta = build_metadata(self.cfg, self.info, self.step, self.elapsed_s, self.command, self.val)
            save_model_dir(snapshot, self.out / MODEL_DIR, meta)
            if self.cfg.keep_snapshots:
                save_model_dir(snapshot, self.out / SNAPSHOT_DIR / f'step_{self.step:06d}', meta)
            save_checkpoint(self.out, {
                'step': self.step, 'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
                'scheduler': self.scheduler.state_dict(), 'sigreg_calls': self.sigreg.calls, 'rng': rngs,
                'world_size': self.ctx.world_size, 'elapsed_s': self.elapsed_s, 'val': self.val,
                'config': self.cfg.to_dict()})
            LOG.info('step %d: checkpoint %s, model %s', self.step, self.out / 'checkpoint.pt',
                     self.out / MODEL_DIR)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def fit(cfg: TrainConfig, command: str = '') -> FitResult:
    """Train (or resume) the run ``cfg.out``; returns where the model went. Under torchrun every
    rank calls this; the process group is created here and destroyed at the end."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = init_distributed(cfg.device)
    try:
        if ctx.is_main:
            Path(cfg.out).mkdir(parents=True, exist_ok=True)
        if ctx.distributed:
            dist.barrier()
        return Trainer(cfg, ctx, command).run()
    finally:
        if ctx.distributed and dist.is_initialized():
            dist.destroy_process_group()


# ----- CLI ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    arg = parser.add_argument
    arg('--data', required=True, help='dataset directory (lewm-train collect) or "synthetic[:key=value,...]"')
    arg('--out', required=True, help='run directory (created; re-running resumes from its checkpoint)')
    arg('--preset', choices=('compact', 'paper'), default=defaults['preset'], help='model sizes')
    arg('--model-config', default=None, help='reference config.json overriding the preset sizes')
    arg('--steps', type=int, default=defaults['steps'], help='optimiser steps')
    arg('--batch-size', type=int, default=defaults['batch_size'], help='GLOBAL batch [windows]')
    arg('--lr', type=float, default=None, help='peak AdamW lr (default: 5e-5 paper, 5e-4 compact)')
    arg('--weight-decay', type=float, default=defaults['weight_decay'])
    arg('--warmup-steps', type=int, default=None, help='linear warm-up (default: 5%% of steps, <= 1000)')
    arg('--min-lr-frac', type=float, default=defaults['min_lr_frac'], help='cosine floor as a fraction of lr')
    arg('--grad-clip', type=float, default=defaults['grad_clip'])
    arg('--lam', type=float, default=defaults['lam'], help='SIGReg weight lambda')
    arg('--sigreg-knots', type=int, default=defaults['sigreg_knots'])
    arg('--sigreg-proj', type=int, default=defaults['sigreg_proj'], help='SIGReg random directions per step')
    arg('--history', type=int, default=defaults['history'], help='frames the predictor sees')
    arg('--frameskip', type=int, default=defaults['frameskip'], help='raw actions per block')
    arg('--val-frac', type=float, default=defaults['val_frac'])
    arg('--split-seed', type=int, default=defaults['split_seed'])
    arg('--seed', type=int, default=defaults['seed'])
    arg('--device', choices=('auto', 'cpu', 'cuda'), default=defaults['device'])
    arg('--no-amp', dest='amp', action='store_false', help='disable bf16 autocast on CUDA')
    arg('--num-workers', type=int, default=defaults['num_workers'], help='DataLoader workers per rank')
    arg('--threads', type=int, default=defaults['threads'], help='torch CPU threads (0: torch default)')
    arg('--log-every', type=int, default=defaults['log_every'])
    arg('--val-every', type=int, default=defaults['val_every'])
    arg('--val-batches', type=int, default=defaults['val_batches'])
    arg('--checkpoint-every', type=int, default=defaults['checkpoint_every'])
    arg('--bn-recal-windows', type=int, default=defaults['bn_recal_windows'],
        help='train windows for BatchNorm recalibration before each export (0: off)')
    arg('--rank-warn-frac', type=float, default=defaults['rank_warn_frac'],
        help='warn when the embedding effective rank drops below this fraction of D')
    arg('--std-warn', type=float, default=defaults['std_warn'],
        help='warn when the mean per-dimension embedding std drops below this')
    arg('--no-tensorboard', dest='tensorboard', action='store_false')
    arg('--no-progress', dest='progress', action='store_false', help='no tqdm bar')
    arg('--no-resume', dest='resume', action='store_false', help='refuse to continue an existing checkpoint')
    arg('--keep-snapshots', action='store_true', help=f'keep every checkpoint\'s model in {SNAPSHOT_DIR}/step_NNNNNN/ '
        '(for lewm-train eval-snapshots)')


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        LOG.error('invalid training settings: %s', exc)
        return 2
    try:
        result = fit(cfg, command=shlex.join(['lewm-train', 'fit', *sys.argv[2:]]))
    except ValueError as exc:
        LOG.error('lewm-train fit: %s', exc)
        return 2
    LOG.info('done: %d steps, model in %s (%s of training)', result.step, result.model_dir,
             format_duration(result.elapsed_s))
    return 0
