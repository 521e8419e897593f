"""``lewm-train eval-snapshots``: success against training steps, from the snapshots that
``lewm-train fit --keep-snapshots`` kept in ``RUN_DIR/snapshots/step_NNNNNN/``.

    lewm-train eval-snapshots runs/tworoom --episodes 30 --params config/sim.yaml --out curve.json

Every snapshot plays the same episodes under the protocol and planner of ``lewm-train eval``
(same flags); the random baseline runs once on those episodes (it does not depend on the
model). Writes the JSON report (one ``lewm-train eval`` summary per step) and the curve (PNG
beside it: any-step and final-state success [%] against steps, random as a line).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from lewm_training.evaluate import add_arguments as add_eval_arguments
from lewm_training.evaluate import evaluate, protocol_from_args, random_baseline, summarize
from lewm_training.fit import SNAPSHOT_DIR
from lewm_training.planner_args import describe

LOG = logging.getLogger(__name__)


def snapshot_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, model directory) of every kept snapshot, by step. ValueError when there is none."""
    root = Path(run_dir) / SNAPSHOT_DIR
    found = sorted((int(p.name.removeprefix('step_')), p) for p in root.glob('step_*')
                   if p.name.removeprefix('step_').isdigit() and (p / 'config.json').is_file())
    if not found:
        raise ValueError(f'{root} holds no snapshot (step_NNNNNN/config.json); train with lewm-train fit '
                         '--keep-snapshots')
    return found


def evaluate_snapshots(run_dir: str | Path, args: argparse.Namespace) -> dict:
    """Evaluate every snapshot of ``run_dir`` on one set of episodes; returns the JSON-able report
    {'run_dir', 'planner', 'protocol', 'random', 'snapshots': [{'step', 'lewm'}, ...]}."""
    from lewm_ros.model.metadata import ModelMetadata
    snapshots = snapshot_dirs(run_dir)
    meta = ModelMetadata.load(snapshots[-1][1])
    cfg, task_name, specs, choice = protocol_from_args(args, meta, snapshots[-1][1])
    LOG.info('%d snapshots (steps %s), %d episodes; planner %s', len(snapshots),
             ', '.join(str(step) for step, _ in snapshots), len(specs), describe(choice))
    random = None if args.no_random else random_baseline(specs, cfg, task_name, meta.image_size)
    rows = []
    for step, model_dir in snapshots:
        report = evaluate(model_dir, specs, cfg, task_name, backend=args.backend, planner_config=choice.config,
                          with_random=False, progress=args.progress)
        rows.append({'step': step, 'model_dir': str(model_dir), 'lewm': report['lewm']})
        LOG.info('step %d: success %.1f%% any step, %.1f%% final', step, report['lewm']['success_rate'],
                 report['lewm']['final_success_rate'])
    return {'run_dir': str(run_dir), 'task': task_name, 'planner': describe(choice),
            'protocol': report['protocol'], 'random': summarize(random, cfg.distance_bins) if random else None,
            'snapshots': rows, 'command': shlex.join(['lewm-train', 'eval-snapshots', *sys.argv[2:]])}


def plot_curve(report: dict, path: str | Path) -> Path:
    """Success [%] against training steps (any step, final state), the random baseline as a line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    steps = [row['step'] for row in report['snapshots']]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(steps, [row['lewm']['success_rate'] for row in report['snapshots']], 'o-', label='LeWM, any step')
    ax.plot(steps, [row['lewm']['final_success_rate'] for row in report['snapshots']], 's--',
            label='LeWM, final state')
    if report['random']:
        ax.axhline(report['random']['success_rate'], color='tab:gray', ls=':', label='random, any step')
    ax.set_xlabel('training steps')
    ax.set_ylabel('success [%]')
    ax.set_ylim(0, 100)
    ax.set_title(f"{report['task']}: {report['protocol']['episodes']} episodes per point", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('run_dir', type=Path, help='run directory of lewm-train fit --keep-snapshots')
    parser.add_argument('--out', type=Path, required=True, help='JSON report path (the PNG curve goes beside it)')
    parser.add_argument('--no-progress', dest='progress', action='store_false', help='no tqdm bar per snapshot')
    add_eval_arguments(parser, model_dir=False)


def run(args: argparse.Namespace) -> int:
    try:
        report = evaluate_snapshots(args.run_dir, args)
    except ValueError as exc:
        raise SystemExit(f'lewm-train eval-snapshots: {exc}') from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + '\n')
    png = plot_curve(report, args.out.with_suffix('.png'))
    LOG.info('wrote %s and %s', args.out, png)
    return 0
