"""resume: ``kill -9`` during ``lewm-train collect`` and ``lewm-train fit``, re-run, compare.

Each command runs once uninterrupted and once killed with SIGKILL ``--kills`` times, each time
at a random moment after fresh progress (a new shard / a new checkpoint), then re-run to the end.
collect (tiny tworoom dataset) is compared episode by episode (ids, lengths, policies, actions,
states, pixels) and file by file; fit (a tiny LeWM on that dataset, dropout on, so the random
streams must resume exactly) by its checkpoint tensors (model, optimiser), the logged losses and
the exported weights.pt (train.csv / val.csv compared without the steps_per_s timing column).
Holds when the resumed results equal the uninterrupted ones bit for bit.
"""
from __future__ import annotations

import argparse
import csv
import filecmp
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from lewm_training.dataset import open_dataset
from lewm_training.reliability.common import CheckResult
from lewm_training.synthetic import tiny_model_config

IMAGE_SIZE = 32


def lewm_train() -> list[str]:
    script = Path(sys.executable).parent / 'lewm-train'
    return [str(script)] if script.exists() else [sys.executable, '-m', 'lewm_training.cli']


def collect_command(out: Path, episodes: int, steps: int) -> list[str]:
    return [*lewm_train(), 'collect', '--task', 'tworoom', '--episodes', str(episodes), '--steps', str(steps),
            '--image-size', str(IMAGE_SIZE), '--out', str(out), '--workers', '2', '--seed', '3',
            '--episodes-per-shard', '2']


def fit_command(out: Path, data: Path, model_json: Path, steps: int) -> list[str]:
    return [*lewm_train(), 'fit', '--data', str(data), '--out', str(out), '--model-config', str(model_json),
            '--steps', str(steps), '--batch-size', '8', '--lr', '2e-3', '--log-every', '5', '--val-every', '20',
            '--checkpoint-every', '10', '--sigreg-proj', '64', '--bn-recal-windows', '32', '--threads', '1',
            '--no-progress', '--no-tensorboard']


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=1800, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, 'PYTHONHASHSEED': '0'}


def killed_run(command: list[str], progress: Callable[[], int], kills: int, rng: np.random.Generator,
               delay_s: float) -> list[int]:
    """Run `command`, SIGKILL it `kills` times (each after progress() grew, plus a random delay up to
    delay_s), then run it to the end. Returns progress() at each kill."""
    points = []
    for _ in range(kills):
        before = progress()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
        while progress() <= before and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, delay_s)))
        if proc.poll() is not None:  # finished before the kill: nothing left to interrupt
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)  # collect's workers die with their parent (PR_SET_PDEATHSIG)
        points.append(progress())
    _run(command)
    return points


def compare_datasets(a: Path, b: Path) -> dict:
    x, y = open_dataset(a), open_dataset(b)
    same = (np.array_equal(x.episode_ids, y.episode_ids) and np.array_equal(x.lengths, y.lengths)
            and np.array_equal(x.policy, y.policy) and np.array_equal(x.actions, y.actions, equal_nan=True)
            and np.array_equal(x.state, y.state)
            and all(np.array_equal(x.pixels(ep), y.pixels(ep)) for ep in range(x.num_episodes)))
    files = sorted(p.name for p in a.iterdir() if p.is_file())
    identical = [name for name in files if (b / name).exists() and filecmp.cmp(a / name, b / name, shallow=False)]
    return {'episodes': x.num_episodes, 'data_equal': bool(same), 'files': len(files),
            'files_identical': len(identical)}


def _logged(path: Path) -> list[dict[str, str]]:
    """The rows of a training log without its wall-clock column (steps_per_s)."""
    with open(path, newline='') as fh:
        return [{k: v for k, v in row.items() if k != 'steps_per_s'} for row in csv.DictReader(fh)]


def compare_runs(a: Path, b: Path) -> dict:
    x, y = (torch.load(run / 'checkpoint.pt', weights_only=True) for run in (a, b))
    model = all(torch.equal(v, y['model'][k]) for k, v in x['model'].items()) and x['model'].keys() == y['model'].keys()
    optimiser = all(torch.equal(v, y['optimizer']['state'][pid][name]) for pid, state in x['optimizer']['state'].items()
                    for name, v in state.items() if torch.is_tensor(v))
    logs = all(_logged(a / name) == _logged(b / name) for name in ('train.csv', 'val.csv'))
    wa, wb = (torch.load(run / 'model' / 'weights.pt', weights_only=True) for run in (a, b))
    weights = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return {'step': int(y['step']), 'model_equal': model, 'optimizer_equal': optimiser, 'logs_equal': logs,
            'exported_weights_equal': weights,
            'weights_file_identical': filecmp.cmp(a / 'model' / 'weights.pt', b / 'model' / 'weights.pt',
                                                  shallow=False)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--episodes', type=int, default=24, help='collect: episodes (2 per shard)')
    parser.add_argument('--steps', type=int, default=40, help='collect: env steps per episode')
    parser.add_argument('--fit-steps', type=int, default=60, help='fit: optimiser steps (checkpoint every 10)')
    parser.add_argument('--kills', type=int, default=3, help='SIGKILLs per command before it is run to the end')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kill moments')
    parser.add_argument('--workdir', type=Path, default=None, help='keep the runs here (default: a temporary dir)')


def run(args: argparse.Namespace) -> CheckResult:
    result = CheckResult('resume')
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        full_data, killed_data = work / 'data_full', work / 'data_killed'
        _run(collect_command(full_data, args.episodes, args.steps))
        collect_kills = killed_run(collect_command(killed_data, args.episodes, args.steps),
                                   lambda: len(list(killed_data.glob('shard_*.h5'))), args.kills, rng, 0.3)
        collect = {**compare_datasets(full_data, killed_data), 'kills_at_shards': collect_kills}

        model_json = work / 'tiny_model.json'
        model_json.write_text(json.dumps(tiny_model_config(image_size=IMAGE_SIZE, dropout=0.1).to_reference_dict()))
        full_run, killed_run_dir = work / 'fit_full', work / 'fit_killed'
        _run(fit_command(full_run, full_data, model_json, args.fit_steps))

        def checkpoint_step() -> int:
            try:
                return int(torch.load(killed_run_dir / 'checkpoint.pt', weights_only=True)['step'])
            except Exception:  # not written yet (or being replaced: the rename is atomic, the read may race)
                return 0
        fit_kills = killed_run(fit_command(killed_run_dir, full_data, model_json, args.fit_steps), checkpoint_step,
                               args.kills, rng, 0.5)
        fit = {**compare_runs(full_run, killed_run_dir), 'kills_at_steps': fit_kills}
    result.require(len(collect_kills) == args.kills, f'collect: only {len(collect_kills)} kills landed mid-run')
    result.require(collect['data_equal'], 'collect: resumed dataset differs from the uninterrupted one')
    result.require(len(fit_kills) == args.kills, f'fit: only {len(fit_kills)} kills landed mid-run')
    result.require(all(fit[k] for k in ('model_equal', 'optimizer_equal', 'logs_equal', 'exported_weights_equal')),
                   f'fit: resumed run differs: {fit}')
    result.figures = {'collect': collect, 'fit': fit}
    result.summary = [
        f'collect: {args.kills} x kill -9 (after shards {collect_kills}) then resume: {collect["episodes"]} episodes '
        f'{"identical" if collect["data_equal"] else "DIFFERENT"}, {collect["files_identical"]}/{collect["files"]} '
        'files byte-identical',
        f'fit: {args.kills} x kill -9 (at checkpoint steps {fit_kills}) then resume to step {fit["step"]}: model '
        f'{fit["model_equal"]}, optimiser {fit["optimizer_equal"]}, losses {fit["logs_equal"]}, exported weights '
        f'{fit["exported_weights_equal"]} (file byte-identical {fit["weights_file_identical"]})']
    return result
