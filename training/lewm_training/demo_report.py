"""What ``lewm-demo`` records per episode and writes: the episode record, the camera|goal GIF
(and the live window), the cost/distance plot, the command rate, and the random baseline on the
demo's own episodes."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)


@dataclass
class EpisodeRecord:
    """One demo episode: success within budget, env steps used, distances [m], plan costs
    (sim time [s], cost); with --faults: fault kind ('' = none) and fault_step (env step in the
    episode it was injected at), surprise (env step, level [calibrated units]) per block
    boundary, commands (env step, nonzero) and command_times (arrival, monotonic [s]) per command."""
    index: int
    success: bool = False
    steps: int = 0
    start_distance: float = float('nan')
    final_distance: float = float('nan')
    wall_s: float = 0.0
    distances: list[tuple[float, float]] = field(default_factory=list)
    costs: list[tuple[float, float]] = field(default_factory=list)
    fault: str = ''
    fault_step: int | None = None
    surprise: list[tuple[int, float]] = field(default_factory=list)
    commands: list[tuple[int, bool]] = field(default_factory=list)
    command_times: list[float] = field(default_factory=list)


def write_gif(frames: list[np.ndarray], path: Path, scale: int = 3, fps: int = 10) -> Path:
    """Camera | goal side by side, upscaled (nearest) and labelled."""
    import cv2
    import imageio.v2 as imageio
    out = []
    for frame in frames:
        big = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        half = big.shape[1] // 2
        cv2.putText(big, 'camera', (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(big, 'goal', (half + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        big[:, half - 1:half + 1] = 0
        out.append(big)
    imageio.mimsave(path, out, duration=1.0 / fps, loop=0)
    return path


def show_live(frame: np.ndarray | None) -> None:
    """Show the newest camera | goal frame (H, W, 3) uint8 RGB, upscaled, in an OpenCV window."""
    import cv2
    if frame is not None:
        cv2.imshow('lewm-demo: camera | goal', cv2.cvtColor(cv2.resize(frame, None, fx=4, fy=4,
                   interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)


def plot_episodes(records: list[EpisodeRecord], path: Path, success_threshold: float, distance_unit: str) -> Path:
    """Planning cost and distance to the goal over (sim) time, one line per episode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for record in records:
        color = 'tab:green' if record.success else 'tab:red'
        if record.costs:
            t0 = record.costs[0][0]
            axes[0].plot([t - t0 for t, _ in record.costs], [c for _, c in record.costs], color=color, alpha=0.6)
        if record.distances:
            t0 = record.distances[0][0]
            axes[1].plot([t - t0 for t, _ in record.distances], [d for _, d in record.distances], color=color,
                         alpha=0.6)
    axes[0].set_xlabel('time in episode [s]')
    axes[0].set_ylabel('plan cost ||z_H - z_goal||^2')
    axes[0].set_yscale('log')
    axes[0].set_title('planning cost (green: reached goal, red: not)')
    axes[1].set_xlabel('time in episode [s]')
    axes[1].set_ylabel(f'distance to goal [{distance_unit}]')
    axes[1].axhline(success_threshold, color='k', ls='--', lw=0.8, label='success threshold')
    axes[1].legend()
    axes[1].set_title('distance to goal')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def command_rate(episodes: list[list[float]]) -> tuple[float, float, float]:
    """Command arrival times [s] of each episode -> (mean rate [Hz], period std [ms], longest
    period [ms]) over the periods inside episodes (the pauses between episodes are not periods of
    the stream). NaNs when no episode has two commands."""
    gaps = np.concatenate([np.diff(np.asarray(times, dtype=np.float64)) for times in episodes] or [np.zeros(0)])
    if gaps.size == 0:
        return float('nan'), float('nan'), float('nan')
    return float(1.0 / gaps.mean()), float(1e3 * gaps.std()), float(1e3 * gaps.max())


def plan_rate(episodes: list[list[float]]) -> float:
    """Plan stamps [s] (sim time) of each episode -> plans per second inside episodes [Hz] (NaN
    when no episode has two plans)."""
    spans = [(len(t) - 1, t[-1] - t[0]) for t in episodes if len(t) > 1]
    seconds = sum(span for _, span in spans)
    return float(sum(n for n, _ in spans) / seconds) if seconds > 0 else float('nan')


def demo_sim_config(params_file: Path, seed: int, task: str | None = None):
    """The sim_node settings of the demo: the sim_node section of ``params_file`` (task, image
    size, goal offset, policy mix) with the demo's ``seed`` (and its ``task`` when given)."""
    from lewm_ros.ros.runner import read_params_file
    from lewm_training.sim_robot import SIM_PARAM_BY_NAME, SimConfig
    sections = read_params_file(params_file)
    values = {k: v for name, section in sections.items() if name.split('/')[-1] in ('**', 'sim_node')
              for k, v in section.items() if k in SIM_PARAM_BY_NAME}
    return SimConfig.from_values({**values, 'seed': seed, **({'task': task} if task else {})})


def random_baseline(params_file: Path, seed: int, budget: int, records: list[EpisodeRecord],
                    task: str | None = None) -> dict:
    """The collection random walk on the demo's own episodes, offline: sim_node draws episode 0 at
    start-up and the demo's resets give episodes 1..N, built from :func:`demo_sim_config`.
    Returns {'episodes', 'success_rate' [%], 'final_success_rate' [%]}; logs a warning when an
    episode's start distance differs from the demo's record (the episodes would not be the same)."""
    from lewm_training.evaluate import EvalConfig, episodes_from_policy, random_baseline as run_random
    sim = demo_sim_config(params_file, seed, task)
    cfg = EvalConfig(episodes=len(records) + 1, goal_offset=sim.goal_offset, budget=budget, seed=seed)
    specs = episodes_from_policy(sim.task, sim.image_size, cfg, heuristic_frac=sim.heuristic_frac)[1:]
    results = run_random(specs, cfg, sim.task, sim.image_size)
    for record, result in zip(records, results):
        if abs(record.start_distance - result.start_distance) > 0.01:
            LOG.warning('random baseline: episode %d starts %.3f from its goal, the demo\'s %.3f: not the same '
                        'episode', record.index, result.start_distance, record.start_distance)
    return {'episodes': len(results), 'success_rate': 100.0 * float(np.mean([r.success for r in results])),
            'final_success_rate': 100.0 * float(np.mean([r.final_success for r in results]))}
