"""``lewm-demo``: the main job in one command -- LeWM plans a simulated robot to goal images
through real ROS 2 topics.

Starts ``sim_node`` (a lewm_training MuJoCo task as a robot) and ``planner_node`` (the node a
robot runs) in one process with ``config/sim.yaml`` (the pip-only runner, as ``lewm-run``
does), then for each episode: disable the planner (``~/enable`` False: it stops and resets its
history, as an operator would before moving the robot), ``/sim_node/reset`` (new start state and
goal image, latched to the planner), enable, and watch ``/sim_node/episode`` until the goal is
reached or the budget of env steps is spent. Prints per-episode results and a summary (success
rate, the random policy's on the same episodes, plan latency p50/p99 from ``/diagnostics``,
achieved command rate and jitter), writes a GIF of the camera with the goal beside it and a plot
of the planning cost and distance over time. ``--cost TERM=WEIGHT`` sets planner_node's critics
(``cost.<term>.enabled`` / ``.weight``; weight 0 disables the term). ``--faults KIND ...`` injects
the kinds in turn, one per episode (``none``: a normal episode), and adds the surprise trace plot
and the stop of each fault episode (:mod:`lewm_training.demo_faults`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lewm_ros.runtime.critics import add_cost_argument, parse_cost_terms
from lewm_ros.validation import check_choice, check_ints, require
from lewm_training.demo_faults import add_fault_arguments, episode_fault, write_fault_report
from lewm_training.demo_observer import DemoObserver, run_episode
from lewm_training.demo_report import (EpisodeRecord, command_rate, demo_sim_config, plan_rate, plot_episodes,
                                       random_baseline, show_live, write_gif)
from lewm_training.tasks import make_task, require_default_task, task_names

LOG = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_model_dir(task: str = 'tworoom') -> Path:
    """The shipped model of ``task`` (``models/<task>_compact``): the repo's models/ (source
    checkout) or the ament share dir."""
    candidates = [REPO_ROOT / 'models' / f'{task}_compact']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('lewm_ros')) / 'models' / f'{task}_compact')
    except Exception:  # noqa: BLE001 -- no ament index: pip-only install
        pass
    for path in candidates:
        if (path / 'config.json').is_file():
            return path
    return candidates[0]


def default_params_file() -> Path:
    return REPO_ROOT / 'config' / 'sim.yaml'


def cost_params(items: list[str]) -> tuple[str, ...]:
    """``TERM=WEIGHT`` items -> planner_node ``name:=value`` parameters: ``cost.<term>.enabled``
    and, for a weight > 0, ``cost.<term>.weight``. ValueError names a malformed item."""
    parse_cost_terms(items)  # syntax, repeats and non-negative weights
    params = []
    for item in items:
        term, _, weight = item.partition('=')
        enabled = float(weight) > 0
        params.append(f'cost.{term.strip()}.enabled:={str(enabled).lower()}')
        if enabled:
            params.append(f'cost.{term.strip()}.weight:={float(weight)!r}')
    return tuple(params)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--task', default=None, choices=task_names(),
                        help="simulated task (default: the params file's sim_node task, tworoom)")
    parser.add_argument('--model-dir', type=Path, default=None, help='model directory (default: the shipped '
                        'models/<task>_compact)')
    parser.add_argument('--episodes', type=int, default=20)
    parser.add_argument('--backend', default='torch', choices=['torch', 'onnxruntime', 'tensorrt'])
    parser.add_argument('--budget', type=int, default=50, help='env steps per episode (paper protocol: 50)')
    parser.add_argument('--seed', type=int, default=42, help='episode seed (same episodes as `lewm-train eval '
                        '--seed`)')
    parser.add_argument('--params', type=Path, default=None, help='ROS 2 params YAML (default: config/sim.yaml)')
    parser.add_argument('--out', type=Path, default=Path('demo_out'), help='output folder (GIF, plot, JSON)')
    parser.add_argument('--gif-episodes', type=int, default=4, help='episodes recorded into the GIF')
    parser.add_argument('--headless', action='store_true',
                        help='no live window (default when there is no $DISPLAY)')
    parser.add_argument('--real-time-factor', type=float, default=DemoConfig.real_time_factor,
                        help='sim speed (sim s per wall s); 1 = real time, as on a robot; < 1 slows the world '
                        'down for a planner too slow for real time (e.g. --params with the paper\'s CEM budget)')
    add_cost_argument(parser)
    add_fault_arguments(parser)


@dataclass(frozen=True)
class DemoConfig:
    """model_dir: model directory; episodes: N; backend: torch | onnxruntime | tensorrt; budget: env
    steps per episode; seed: episode seed (sim_node seed); params_file: ROS 2 params YAML;
    out: output folder; gif_episodes: episodes recorded into the GIF; live: show an OpenCV window;
    real_time_factor: sim seconds per wall second; progress: tqdm bar and per-episode lines;
    cost: planner_node critic parameters ('name:=value', see :func:`cost_params`); faults: fault kinds
    injected in turn, one per episode ('none' = a normal episode); fault_after: env steps to the fault;
    task: the simulated task (None: the params file's sim_node task)."""
    model_dir: Path
    episodes: int = 20
    backend: str = 'torch'
    budget: int = 50
    seed: int = 42
    params_file: Path = field(default_factory=default_params_file)
    out: Path = Path('demo_out')
    gif_episodes: int = 4
    live: bool = False
    real_time_factor: float = 1.0
    progress: bool = True
    cost: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    fault_after: int = 15
    task: str | None = None

    def __post_init__(self) -> None:
        check_ints('', self, ('episodes', 'budget'), 1)
        if self.task is not None:
            check_choice('task', self.task, task_names())
        require((Path(self.model_dir) / 'config.json').is_file(), 'model_dir', str(self.model_dir),
                'a model directory with config.json (train one with lewm-train fit)')


def run_demo(cfg: DemoConfig) -> tuple[dict, list[EpisodeRecord]]:
    """Run the demo; returns (summary, per-episode records) and writes GIF, plot and JSON to cfg.out."""
    from lewm_ros.model.metadata import ModelMetadata
    from lewm_ros.ros.planner_node import PlannerNode
    from lewm_ros.ros.runner import RunConfig, Runner
    from lewm_training.sim_node import SimNode
    model_dir = Path(cfg.model_dir).resolve()
    cfg.out.mkdir(parents=True, exist_ok=True)
    sim = demo_sim_config(Path(cfg.params_file), cfg.seed, cfg.task)
    task = make_task(sim.task, image_size=16)
    try:  # with --task the planner commands one raw action per env step of the task (reacher: 50 Hz)
        threshold, unit, control_rate_hz = task.success_threshold, task.distance_unit, 1.0 / task.dt
    finally:
        task.close()
    metadata = ModelMetadata.load(model_dir)
    trained_on = metadata.task
    require(not trained_on or trained_on == task.name, 'model_dir', str(model_dir),
            f'a model of the task the simulator runs ({task.name}; this one was trained on {trained_on})')
    require_default_task(metadata, model_dir, 'sim_node')
    config = RunConfig(params_file=Path(cfg.params_file).resolve(), nodes=('sim_node', 'planner_node'),
                       log_level='warn',
                       params=(f'model_dir:={model_dir}', f'backend:={cfg.backend}', f'seed:={cfg.seed}',
                               f'real_time_factor:={cfg.real_time_factor}', 'start_enabled:=false',
                               *([f'control_rate:={control_rate_hz!r}'] if cfg.task else []), *cfg.cost,
                               *([f'task:={cfg.task}'] if cfg.task else [])))
    LOG.info('starting sim_node + planner_node (model %s, backend %s)', model_dir, cfg.backend)
    runner = Runner(config, {'sim_node': SimNode, 'planner_node': PlannerNode})
    records: list[EpisodeRecord] = []
    gif_path = cfg.out / 'demo.gif'
    try:
        runner.start()
        from rclpy.executors import SingleThreadedExecutor

        from lewm_ros.ros.spinning import spin
        observer = DemoObserver(runner.context, keep_frames=True, command_type=sim.command_type)
        executor = SingleThreadedExecutor(context=runner.context)
        executor.add_node(observer.node)
        threading.Thread(target=spin, args=(executor,), daemon=True).start()
        timeout_s = 5.0 + 3.0 * cfg.budget / control_rate_hz / cfg.real_time_factor
        bar = tqdm(range(cfg.episodes), desc='demo', unit='ep', disable=not cfg.progress)
        for index in bar:
            with observer.lock:
                observer.keep_frames = index < cfg.gif_episodes
            # With faults: time for a planner behind on its inputs (a loaded CPU) to see the disable and
            # the new episode's frames before the surprise stop is released and it is enabled.
            record = run_episode(observer, index, cfg.budget, settle_s=1.5 if cfg.faults else 0.3, timeout_s=timeout_s,
                                 fault=episode_fault(cfg.faults, index), fault_after=cfg.fault_after)
            records.append(record)
            bar.set_postfix(success=f'{100.0 * np.mean([r.success for r in records]):.0f}%')
            if cfg.progress:
                tqdm.write(f'episode {index:3d}: {"REACHED" if record.success else "missed "}  steps '
                           f'{record.steps:3d}  distance {record.start_distance:.2f} -> '
                           f'{record.final_distance:.2f}  plans {len(record.costs)}')
            if cfg.live:
                with observer.lock:
                    show_live(observer.frames[-1] if observer.frames else None)
            if index == min(cfg.gif_episodes, cfg.episodes) - 1:
                with observer.lock:
                    gif_frames = list(observer.frames)
                if gif_frames:
                    write_gif(gif_frames, gif_path)
        with observer.lock:
            diagnostics = dict(observer.diagnostics)
            cmd_rate, jitter_ms, longest_ms = command_rate([r.command_times for r in records])
    finally:
        runner.stop()
    LOG.info('random baseline on the same %d episodes', len(records))
    random = random_baseline(Path(cfg.params_file), cfg.seed, cfg.budget, records, cfg.task)
    summary = {
        'model_dir': str(model_dir), 'backend': cfg.backend, 'episodes': len(records), 'budget_steps': cfg.budget,
        'seed': cfg.seed,
        'success_rate': 100.0 * float(np.mean([r.success for r in records])) if records else 0.0,
        'random_success_rate': random['success_rate'], 'random_final_success_rate': random['final_success_rate'],
        'cost_params': list(cfg.cost),
        'plan_latency_ms_p50': _float(diagnostics.get('plan_latency_p50_ms')),
        'plan_latency_ms_p99': _float(diagnostics.get('plan_latency_p99_ms')),
        'planning_rate_hz': plan_rate([[t for t, _ in r.costs] for r in records]),
        'command_rate_hz': cmd_rate, 'command_period_jitter_ms': jitter_ms,
        'command_period_max_ms': longest_ms,
    }
    plot_episodes(records, cfg.out / 'demo_costs.png', threshold, unit)
    if cfg.faults:
        summary['faults'] = write_fault_report(records, model_dir, Path(cfg.params_file), cfg.out)
    (cfg.out / 'demo_results.json').write_text(json.dumps(
        {'summary': summary, 'episodes': [asdict(r) for r in records]}, indent=2) + '\n')
    return summary, records


def run(args: argparse.Namespace) -> int:
    try:
        params_file = args.params or default_params_file()
        task = demo_sim_config(Path(params_file), args.seed, args.task).task
        cfg = DemoConfig(model_dir=args.model_dir or default_model_dir(task), episodes=args.episodes,
                         backend=args.backend, budget=args.budget, seed=args.seed,
                         params_file=params_file, out=args.out,
                         gif_episodes=args.gif_episodes, real_time_factor=args.real_time_factor,
                         live=not args.headless and bool(os.environ.get('DISPLAY')), cost=cost_params(args.cost),
                         faults=tuple(args.faults), fault_after=args.fault_after, task=args.task)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    summary, records = run_demo(cfg)
    print('\nLeWM closed-loop demo (sim_node <-> planner_node over ROS 2 topics)')
    print(f"  success: {summary['success_rate']:.0f}% of {len(records)} episodes (budget {cfg.budget} env steps); "
          f"random policy on the same episodes: {summary['random_success_rate']:.0f}%")
    print(f"  plan latency: p50 {summary['plan_latency_ms_p50']:.1f} ms, p99 {summary['plan_latency_ms_p99']:.1f} "
          f"ms (the last 200 plans); planning {summary['planning_rate_hz']:.2f} Hz (within episodes)")
    print(f"  commands: {summary['command_rate_hz']:.2f} Hz achieved, period jitter "
          f"{summary['command_period_jitter_ms']:.1f} ms, longest period {summary['command_period_max_ms']:.0f} ms "
          "(within episodes)")
    for row in summary.get('faults', {}).get('episodes', []):
        print(f"  episode {row['episode']}: fault {row['fault']}, stopped {row['stop_blocks']} block(s) after it")
    print(f"  wrote {cfg.out / 'demo.gif'}, {cfg.out / 'demo_costs.png'}, {cfg.out / 'demo_results.json'}")
    return 0


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    parser = argparse.ArgumentParser(prog='lewm-demo', description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
