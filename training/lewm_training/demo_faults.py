"""``lewm-demo --faults``: what the demo adds for fault episodes (no ROS here).

An episode with a fault injects it through ``/sim_node/fault/<kind>`` ``fault_after`` env steps
after the robot first moves and ends ``STOP_WINDOW`` env steps later (success does not end it; a
fault episode that never moves runs its budget).
The demo records the surprise levels planner_node publishes on ``~/surprise`` and whether each
command moves the robot; from them this module finds the alarm and the stop, marks the GIF
frames (orange border: fault injected, red border: stopped after it) and plots the surprise
traces against the threshold.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from lewm_ros.control.surprise_monitor import SurprisePolicy
from lewm_training.demo_report import EpisodeRecord
from lewm_training.faults import FAULT_KINDS

#: What --faults accepts: a fault kind, or 'none' (a normal episode in the cycle).
FAULT_CHOICES = ('none', *FAULT_KINDS)
#: Env steps an episode runs after its fault.
STOP_WINDOW = 25
FAULT_RGB = (255, 150, 0)
STOP_RGB = (255, 0, 0)


def episode_fault(faults: tuple[str, ...], index: int) -> str:
    """The fault of demo episode ``index`` ('' = none): the kinds of --faults in turn."""
    if not faults:
        return ''
    kind = faults[index % len(faults)]
    return '' if kind == 'none' else kind


def stop_step(record: EpisodeRecord) -> int | None:
    """The first env step after the fault from which every command was zero to the end of the
    episode (None: the robot was still commanded to move, or no fault)."""
    if record.fault_step is None or not record.commands:
        return None
    stop = None
    for step, moving in record.commands:
        if step < record.fault_step:
            continue
        if moving:
            stop = None
        elif stop is None:
            stop = step
    return stop


def first_alarm(record: EpisodeRecord, policy: SurprisePolicy) -> int | None:
    """The env step of the first block boundary whose surprise level raises the policy's alarm
    (after the fault when there is one), replaying the monitor's rule over the recorded levels."""
    start, streak = record.fault_step or 0, 0
    for step, level in record.surprise:
        streak = streak + 1 if level >= policy.threshold else 0
        if step >= start and policy.alarm(level, streak):
            return step
    return None


def blocks_between(start: int | None, end: int | None, frameskip: int) -> int | None:
    """Whole blocks from env step ``start`` to ``end`` (ceil), None when either is missing."""
    return None if start is None or end is None else math.ceil((end - start) / frameskip)


def mark(frame: np.ndarray, rgb: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 with a coloured border ``width`` px wide."""
    out = frame.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = rgb, rgb, rgb, rgb
    return out


def fault_summary(records: list[EpisodeRecord], policy: SurprisePolicy, frameskip: int) -> dict:
    """Per fault episode: fault, stopped within how many blocks, alarm; normal episodes: how many
    raised an alarm (the policy's rule: see :func:`first_alarm`)."""
    rows = []
    for record in records:
        stop, alarm = stop_step(record), first_alarm(record, policy)
        rows.append({'episode': record.index, 'fault': record.fault or 'none', 'fault_step': record.fault_step,
                     'alarm_step': alarm, 'stop_step': stop,
                     'stop_blocks': blocks_between(record.fault_step, stop, frameskip)})
    normal = [r for r in rows if r['fault'] == 'none']
    return {'threshold': policy.threshold, 'consecutive': policy.consecutive,
            'instant_threshold': policy.instant_threshold, 'episodes': rows,
            'normal_episodes': len(normal), 'normal_with_alarm': sum(r['alarm_step'] is not None for r in normal)}


def plot_surprise(records: list[EpisodeRecord], threshold: float, path: Path) -> Path:
    """Surprise level per block boundary over env steps, one line per episode, threshold dashed,
    the fault (dotted) and the stop (x) marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, record in enumerate(records):
        if not record.surprise:
            continue
        color = colors[i % len(colors)] if record.fault else 'tab:gray'
        steps, levels = zip(*record.surprise)
        ax.plot(steps, np.maximum(levels, 1e-3), color=color, marker='.', lw=1,
                label=f'{record.index}: {record.fault or "normal"}')
        if record.fault_step is not None:
            ax.axvline(record.fault_step, color=color, ls=':', lw=1)
        stop = stop_step(record)
        if stop is not None:
            ax.plot([stop], [threshold], 'x', color=color, ms=10, mew=2)
    ax.axhline(threshold, color='k', ls='--', lw=1, label='threshold')
    ax.set_yscale('log')
    ax.set_xlabel('env step in episode')
    ax.set_ylabel('surprise [calibrated units]')
    ax.set_title('surprise per block (dotted: fault injected, x: robot stopped)')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def add_fault_arguments(parser) -> None:
    """--faults and --fault-after of lewm-demo."""
    parser.add_argument('--faults', nargs='+', default=[], choices=FAULT_CHOICES, metavar='KIND',
                        help=f'inject these faults in turn, one per episode ({", ".join(FAULT_CHOICES)})')
    parser.add_argument('--fault-after', type=int, default=15,
                        help='env steps after the robot first moves when the fault is injected (default: %(default)s)')


def surprise_policy(params_file: Path) -> SurprisePolicy:
    """planner_node's surprise.threshold, .consecutive and .instant_threshold in the params file,
    else their defaults."""
    from lewm_ros.ros.runner import read_params_file
    policy = SurprisePolicy()
    for name, section in read_params_file(params_file).items():
        if name.split('/')[-1] in ('**', 'planner_node'):
            given = section.get('surprise', {})
            policy = dataclasses.replace(policy, **{key: type(getattr(policy, key))(given[key]) for key in
                                                    ('threshold', 'consecutive', 'instant_threshold') if key in given})
    return policy


def write_fault_report(records: list[EpisodeRecord], model_dir: Path, params_file: Path, out: Path) -> dict:
    """The fault summary (see :func:`fault_summary`) and ``demo_surprise.png`` in ``out``."""
    from lewm_ros.model.metadata import ModelMetadata
    policy = surprise_policy(params_file)
    plot_surprise(records, policy.threshold, out / 'demo_surprise.png')
    return fault_summary(records, policy, ModelMetadata.load(model_dir).frameskip)
