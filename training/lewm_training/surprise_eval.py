"""Surprise monitor evaluation: detection rate and delay per injected fault, false alarms on
normal episodes (closed loop, no ROS).

    lewm-train surprise-eval --model-dir models/tworoom_compact --normal 100 --per-fault 20 \\
        --out surprise_eval.json

Runs ``--normal`` normal episodes and ``--per-fault`` episodes per fault kind
(:mod:`lewm_training.faults`), each ``--blocks`` action blocks long with the default MPC planner
(``MPCConfig()``, planner_node's default), the fault injected before a random block in
[``--fault-from``, ``--fault-to``]. Every block boundary is scored by the monitor planner_node
runs (:mod:`lewm_ros.control.surprise_monitor`) with the model's calibration and the node's
default policy (threshold and consecutive overridable). Writes the JSON (per-kind table + every
trace) and a plot of the surprise traces against the threshold (same path, .png).
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from lewm_ros.control.surprise_calibration import SurpriseCalibration, load_calibration
from lewm_ros.control.surprise_monitor import SurpriseMonitor, SurprisePolicy
from lewm_ros.runtime.onnx_manifest import model_hash
from lewm_ros.validation import check_int, require
from lewm_training.faults import FAULT_KINDS
from lewm_training.surprise_episodes import SurpriseTrace, run_episode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurpriseEvalConfig:
    """normal: normal episodes; per_fault: episodes per fault kind; kinds: the fault kinds;
    blocks: action blocks per episode; fault_from / fault_to: the fault precedes a block drawn
    uniformly in [fault_from, fault_to]; seed: the sim's episode seed (start/goal pairs) and the
    fault draws; threads: torch threads."""
    normal: int = 100
    per_fault: int = 20
    kinds: tuple[str, ...] = FAULT_KINDS
    blocks: int = 10
    fault_from: int = 3
    fault_to: int = 6
    seed: int = 7
    threads: int = 1

    def __post_init__(self) -> None:
        check_int('normal', self.normal, 0)
        check_int('per_fault', self.per_fault, 0)
        require(all(k in FAULT_KINDS for k in self.kinds), 'kinds', list(self.kinds), f'kinds from {FAULT_KINDS}')
        check_int('fault_from', self.fault_from, 1)
        check_int('fault_to', self.fault_to, self.fault_from)
        check_int('blocks', self.blocks, self.fault_to + 1)
        check_int('threads', self.threads, 1)


def make_robot_and_planner(model_dir: Path, seed: int, threads: int):
    """(SimRobot for the model's task and image size, default MPCPlanner on torch CPU: planner_node's
    default, mode 'auto' resolved for the model directory)."""
    import torch

    from lewm_ros.planning import MPCPlanner
    from lewm_training.sim_robot import SimConfig, SimRobot
    from lewm_training.tasks import require_default_task
    torch.set_num_threads(threads)
    planner = MPCPlanner.from_model_dir(model_dir)
    meta = planner.metadata
    require(bool(meta.task), 'model_dir', str(model_dir), 'a model whose lewm_meta.json names its task')
    require_default_task(meta, model_dir, 'the surprise closed loop')
    return SimRobot(SimConfig(task=meta.task, image_size=meta.image_size, seed=seed)), planner


def planner_label(planner) -> str:
    """What the closed loop planned with: the default budget and the mode it resolved to."""
    cem = planner.config.cem
    return (f'MPCConfig() ({cem.num_samples} x {cem.iterations}, warm start {planner.config.warm_iterations} '
            f'it.), mode {planner.config.mode}')


def summarize(traces: list[SurpriseTrace], kinds: tuple[str, ...]) -> dict:
    """Per fault kind: episodes, detected, rate [%], delay [blocks] median / max, false alarms before the
    fault; 'normal': episodes, episodes with an alarm, alarmed boundaries."""
    table = {}
    normal = [t for t in traces if not t.fault]
    table['normal'] = {'episodes': len(normal), 'episodes_with_alarm': sum(t.false_alarms > 0 for t in normal),
                       'alarmed_boundaries': sum(t.false_alarms for t in normal),
                       'boundaries': sum(len(t.alarms) for t in normal)}
    for kind in kinds:
        runs = [t for t in traces if t.fault == kind]
        delays = [t.delay_blocks for t in runs if t.delay_blocks is not None]
        table[kind] = {'episodes': len(runs), 'detected': len(delays),
                       'detection_rate_pct': 100.0 * len(delays) / len(runs) if runs else float('nan'),
                       'delay_median_blocks': float(np.median(delays)) if delays else None,
                       'delay_max_blocks': int(max(delays)) if delays else None,
                       'false_alarm_episodes_before_fault': sum(t.false_alarms > 0 for t in runs)}
    return table


def run_eval(model_dir: Path, config: SurpriseEvalConfig, policy: SurprisePolicy, progress: bool = True) -> dict:
    """Run every episode; returns the JSON report (table, traces, settings)."""
    calibration = load_calibration(model_dir)
    require(calibration is not None, 'model_dir', str(model_dir),
            'a model with surprise_calibration.json (lewm-train surprise --calibrate)')
    robot, planner = make_robot_and_planner(model_dir, config.seed, config.threads)
    monitor = SurpriseMonitor(policy, calibration)
    draws = np.random.default_rng(config.seed)
    jobs = [('', -1)] * config.normal + [(kind, int(draws.integers(config.fault_from, config.fault_to + 1)))
                                         for kind in config.kinds for _ in range(config.per_fault)]
    traces, started = [], time.perf_counter()
    try:
        for i, (kind, block) in enumerate(jobs):
            traces.append(run_episode(robot, planner, monitor, config.blocks, kind, block))
            if progress and (i + 1) % 20 == 0:
                log.info('%d / %d episodes (%.0f s)', i + 1, len(jobs), time.perf_counter() - started)
    finally:
        robot.close()
    return {'model_dir': str(model_dir), 'config': asdict(config), 'policy': asdict(policy),
            'calibration': calibration.to_dict(), 'planner': planner_label(planner), 'commit': _commit(),
            'machine': platform.processor() or platform.machine(), 'wall_s': round(time.perf_counter() - started, 1),
            'table': summarize(traces, config.kinds),
            'traces': [{**asdict(t), 'first_alarm': t.first_alarm, 'delay_blocks': t.delay_blocks} for t in traces]}


def calibrate(model_dir: Path, episodes: int, blocks: int, seed: int, threads: int = 1) -> SurpriseCalibration:
    """The score distribution of ``episodes`` normal closed-loop episodes of ``blocks`` blocks
    (every block boundary with a prediction), as a calibration record (not yet saved)."""
    check_int('episodes', episodes, 1)
    check_int('blocks', blocks, 1)
    robot, planner = make_robot_and_planner(model_dir, seed, threads)
    monitor = SurpriseMonitor(SurprisePolicy(action='warn'), None)
    try:
        scores = [s for _ in range(episodes) for s in run_episode(robot, planner, monitor, blocks).scores]
    finally:
        robot.close()
    source = (f'lewm-train surprise --calibrate --model-dir <model> --calibrate-episodes {episodes} '
              f'--calibrate-blocks {blocks} --seed {seed}')
    return SurpriseCalibration.from_scores(scores, source, extra={'planner': planner_label(planner),
                                                                  'episodes': episodes, 'blocks': blocks,
                                                                  'seed': seed, 'commit': _commit()},
                                           model_hash=model_hash(model_dir))


def plot_traces(report: dict, path: Path) -> Path:
    """One panel per group (normal + each fault kind): surprise level per block boundary relative
    to the fault, every episode a line, the threshold dashed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = ['normal', *report['config']['kinds']]
    cols = 5
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharey=True, squeeze=False)
    threshold = report['policy']['threshold']
    for ax, group in zip(axes.flat, groups):
        for t in report['traces']:
            if (t['fault'] or 'normal') != group:
                continue
            x = np.arange(1, len(t['levels']) + 1) - (t['fault_block'] if t['fault'] else 0)
            ax.plot(x, np.maximum(t['levels'], 1e-3), lw=0.7, alpha=0.5, color='tab:red' if t['fault'] else 'tab:gray')
        ax.axhline(threshold, ls='--', color='k', lw=1)
        if group != 'normal':
            ax.axvline(0.5, color='tab:blue', lw=0.8)
        row = report['table'][group]
        rate = '' if group == 'normal' else f", {row['detection_rate_pct']:.0f}% detected"
        ax.set_title(f'{group}{rate}', fontsize=9)
        ax.set_yscale('log')
        ax.set_xlabel('blocks after the fault' if group != 'normal' else 'block')
    for ax in axes.flat[len(groups):]:
        ax.axis('off')
    axes[0, 0].set_ylabel('surprise [calibrated units]')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _commit() -> str:
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


# ----- CLI ------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d, p = SurpriseEvalConfig(), SurprisePolicy()
    parser.add_argument('--model-dir', type=Path, required=True, help='model directory with surprise_calibration.json')
    parser.add_argument('--normal', type=int, default=d.normal, help='normal episodes (default: %(default)s)')
    parser.add_argument('--per-fault', type=int, default=d.per_fault, help='episodes per fault (default: %(default)s)')
    parser.add_argument('--kinds', nargs='+', default=list(d.kinds), choices=FAULT_KINDS, help='fault kinds')
    parser.add_argument('--blocks', type=int, default=d.blocks, help='blocks per episode (default: %(default)s)')
    parser.add_argument('--fault-from', type=int, default=d.fault_from, help='(default: %(default)s)')
    parser.add_argument('--fault-to', type=int, default=d.fault_to, help='(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=d.seed, help='(default: %(default)s)')
    parser.add_argument('--threads', type=int, default=d.threads, help='torch threads (default: %(default)s)')
    parser.add_argument('--threshold', type=float, default=p.threshold,
                        help="alarm level [calibrated units] (default: planner_node's, %(default)s)")
    parser.add_argument('--consecutive', type=int, default=p.consecutive,
                        help="blocks in a row (default: planner_node's, %(default)s)")
    parser.add_argument('--instant-threshold', type=float, default=p.instant_threshold,
                        help="one block at this level alarms at once (default: planner_node's, %(default)s)")
    parser.add_argument('--out', type=Path, default=Path('surprise_eval.json'), help='JSON; the plot: .png')


def run(args: argparse.Namespace) -> int:
    try:
        config = SurpriseEvalConfig(normal=args.normal, per_fault=args.per_fault, kinds=tuple(args.kinds),
                                    blocks=args.blocks, fault_from=args.fault_from, fault_to=args.fault_to,
                                    seed=args.seed, threads=args.threads)
        policy = replace(SurprisePolicy(), threshold=args.threshold, consecutive=args.consecutive,
                         instant_threshold=args.instant_threshold)
        report = run_eval(args.model_dir, config, policy)
    except ValueError as exc:
        log.error('%s', exc)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + '\n')
    plot = plot_traces(report, args.out.with_suffix('.png'))
    for group, row in report['table'].items():
        log.info('%s: %s', group, row)
    log.info('wrote %s and %s (%.0f s)', args.out, plot, report['wall_s'])
    return 0
