"""``lewm-train eval``: closed-loop success rate under the paper's protocol.

Protocol (LeWM v3): start from a state on a held-out trajectory, goal = the frame
``goal_offset`` (25) env steps later on that trajectory, ``budget`` (50) env steps,
N episodes drawn with a fixed seed (42). An episode succeeds when the task's success
test holds at any env step within the budget (the episode then ends). The random
baseline runs the SAME episodes with the collection random-walk policy; always report both.

Planning goes through ``lewm_ros.planning`` (the MPC planner the robot runs): the planner
observes a frame at every block boundary (every ``frameskip`` env steps) with the raw actions
executed in that block, and replans every ``receding_blocks`` blocks.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lewm_ros.validation import check_ints
from lewm_training.policies import RandomWalkPolicy
from lewm_training.tasks import make_task

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: start and goal states (state_dim,) and where they came from."""
    start_state: np.ndarray
    goal_state: np.ndarray
    source: str


@dataclass
class EpisodeResult:
    """success: reached within budget; steps: env steps used; final/min distance [task units];
    plan_latencies_s: every plan's latency; costs: every plan's cost."""
    success: bool
    steps: int
    start_distance: float
    final_distance: float
    min_distance: float
    plan_latencies_s: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class EvalConfig:
    """episodes: N; goal_offset: env steps from start to goal on the trajectory (25);
    budget: env steps allowed (50); seed: episode draw seed (42); receding_blocks: blocks executed
    per plan (1 = replan at every block; the reference executes the whole plan, H)."""
    episodes: int = 50
    goal_offset: int = 25
    budget: int = 50
    seed: int = 42
    receding_blocks: int = 1

    def __post_init__(self) -> None:
        check_ints('', self, ('episodes', 'goal_offset', 'budget', 'receding_blocks'), 1)


def episodes_from_dataset(data: str | Path, cfg: EvalConfig) -> list[EpisodeSpec]:
    """Start/goal pairs from the held-out (validation) episodes of a collected dataset."""
    from lewm_training.dataset import open_dataset, split_episodes
    dataset = open_dataset(data, in_memory=False)
    _, val_ids = split_episodes(dataset.num_episodes, seed=0)
    rng = np.random.default_rng(cfg.seed)
    candidates = [int(e) for e in val_ids if dataset.lengths[e] > cfg.goal_offset]
    if not candidates:
        raise ValueError(f'dataset {data} has no validation episode longer than goal_offset={cfg.goal_offset}')
    specs = []
    for _ in range(cfg.episodes):
        ep = candidates[rng.integers(len(candidates))]
        t0 = int(rng.integers(0, dataset.lengths[ep] - cfg.goal_offset))
        states = dataset.episode_state(ep)
        specs.append(EpisodeSpec(states[t0].copy(), states[t0 + cfg.goal_offset].copy(), f'dataset ep {ep} t {t0}'))
    return specs


def episodes_from_policy(task_name: str, image_size: int, cfg: EvalConfig, heuristic_frac: float = 0.5
                         ) -> list[EpisodeSpec]:
    """Start/goal pairs from fresh trajectories of the collection policy mix (seeded, held out by seed)."""
    from lewm_training.policies import PolicyConfig, make_policy
    task = make_task(task_name, image_size=image_size, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 10_000)
    specs = []
    for i in range(cfg.episodes):
        task.reset(seed=cfg.seed * 1000 + i)
        _, policy = make_policy(PolicyConfig(kind='mix', heuristic_frac=heuristic_frac), task, rng)
        start = task.get_state()
        for _ in range(cfg.goal_offset):
            task.step(policy(task))
        specs.append(EpisodeSpec(start, task.get_state(), f'policy rollout {i}'))
    task.close()
    return specs


def run_planner_episode(task, planner, spec: EpisodeSpec, cfg: EvalConfig) -> EpisodeResult:
    """Closed loop: observe at block boundaries, replan every ``receding_blocks`` blocks."""
    obs, _ = task.reset(options={'state': spec.start_state})
    planner.reset()
    planner.set_goal(task.render_state(spec.goal_state))
    planner.observe(obs.pixels, None)
    start = task.distance(obs.state, spec.goal_state)
    result = EpisodeResult(False, 0, start, start, start)
    while result.steps < cfg.budget and not result.success:
        plan = planner.plan()
        result.plan_latencies_s.append(float(plan.latency_s))
        result.costs.append(float(plan.cost))
        for block in plan.raw_actions[:cfg.receding_blocks]:
            for action in block:
                obs = task.step(action)[0]
                result.steps += 1
                _update(result, task, obs.state, spec.goal_state)
                if result.success or result.steps >= cfg.budget:
                    return result
            planner.observe(obs.pixels, np.asarray(block))
    return result


def run_random_episode(task, spec: EpisodeSpec, cfg: EvalConfig, seed: int) -> EpisodeResult:
    """The random baseline on the same episode: the collection random walk."""
    obs, _ = task.reset(options={'state': spec.start_state})
    policy = RandomWalkPolicy(task, np.random.default_rng(seed))
    start = task.distance(obs.state, spec.goal_state)
    result = EpisodeResult(False, 0, start, start, start)
    while result.steps < cfg.budget and not result.success:
        obs = task.step(policy(task))[0]
        result.steps += 1
        _update(result, task, obs.state, spec.goal_state)
    return result


def _update(result: EpisodeResult, task, state: np.ndarray, goal: np.ndarray) -> None:
    distance = task.distance(state, goal)
    result.final_distance = distance
    result.min_distance = min(result.min_distance, distance)
    result.success = result.success or task.is_success(state, goal)


def summarize(results: list[EpisodeResult]) -> dict:
    """Success rate [%] and latency percentiles [ms] of a list of episode results."""
    latencies = [x for r in results for x in r.plan_latencies_s]
    summary = {
        'episodes': len(results),
        'success_rate': 100.0 * float(np.mean([r.success for r in results])) if results else 0.0,
        'mean_steps': float(np.mean([r.steps for r in results])) if results else 0.0,
        'mean_final_distance': float(np.mean([r.final_distance for r in results])) if results else 0.0,
    }
    if latencies:
        summary['plan_latency_ms_p50'] = 1e3 * float(np.percentile(latencies, 50))
        summary['plan_latency_ms_p99'] = 1e3 * float(np.percentile(latencies, 99))
        summary['plans'] = len(latencies)
    return summary


def evaluate(model_dir: str | Path, specs: list[EpisodeSpec], cfg: EvalConfig, task_name: str,
             backend: str = 'torch', planner_config=None, with_random: bool = True,
             progress: bool = True, **backend_options) -> dict:
    """Run the planner (and the random baseline) on ``specs``; returns the JSON-able report.
    ``backend_options`` go to the backend (e.g. ``cost=LatentCostConfig(...)``)."""
    from lewm_ros.planning.mpc import MPCPlanner
    planner = MPCPlanner.from_model_dir(model_dir, backend=backend, config=planner_config, **backend_options)
    task = make_task(task_name, image_size=planner.metadata.image_size, seed=cfg.seed)
    planned, random = [], []
    started = time.perf_counter()
    bar = tqdm(specs, desc='eval', unit='ep', disable=not progress)
    for i, spec in enumerate(bar):
        planned.append(run_planner_episode(task, planner, spec, cfg))
        if with_random:
            random.append(run_random_episode(task, spec, cfg, seed=cfg.seed + i))
        bar.set_postfix(success=f'{100 * np.mean([r.success for r in planned]):.0f}%',
                        random=f'{100 * np.mean([r.success for r in random]):.0f}%' if random else '-')
    task.close()
    report = {
        'model_dir': str(model_dir), 'task': task_name, 'backend': backend, 'protocol': asdict(cfg),
        'planner_config': _jsonable(planner.config),
        'lewm': summarize(planned), 'random': summarize(random) if random else None,
        'wall_time_s': time.perf_counter() - started,
        'episodes': [{'source': s.source, 'lewm': asdict(p), 'random': asdict(r) if random else None}
                     for s, p, r in zip(specs, planned, random or [None] * len(planned))],
    }
    return report


def _jsonable(obj):
    try:
        return json.loads(json.dumps(asdict(obj), default=str))
    except TypeError:
        return str(obj)


def plot_report(report: dict, path: str | Path) -> Path:
    """Bar chart (LeWM vs random success) + final-distance histogram."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    names = ['LeWM (MPC)', 'random']
    rates = [report['lewm']['success_rate'], (report['random'] or {}).get('success_rate', 0.0)]
    axes[0].bar(names, rates, color=['tab:blue', 'tab:gray'])
    axes[0].set_ylim(0, 100)
    axes[0].set_ylabel('success [%]')
    axes[0].set_title(f"{report['task']}: {report['lewm']['episodes']} episodes, "
                      f"budget {report['protocol']['budget']} steps")
    for x, rate in enumerate(rates):
        axes[0].text(x, rate + 2, f'{rate:.0f}%', ha='center')
    lewm_d = [e['lewm']['final_distance'] for e in report['episodes']]
    axes[1].hist(lewm_d, bins=20, alpha=0.7, label='LeWM')
    if report['random']:
        axes[1].hist([e['random']['final_distance'] for e in report['episodes']], bins=20, alpha=0.5,
                     label='random', color='tab:gray')
    axes[1].set_xlabel('final distance to goal')
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model-dir', required=True, help='model directory (config.json, weights.pt, lewm_meta.json)')
    parser.add_argument('--task', default=None, help='task name (default: the model metadata task)')
    parser.add_argument('--data', default=None, help='dataset whose validation episodes give start/goal pairs '
                        '(default: fresh seeded rollouts of the collection policy mix)')
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--goal-offset', type=int, default=25, help='env steps from start to goal')
    parser.add_argument('--budget', type=int, default=50, help='env steps allowed')
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--receding-blocks', type=int, default=1, help='blocks executed per plan')
    parser.add_argument('--backend', default='torch', choices=['torch', 'onnxruntime', 'tensorrt'])
    parser.add_argument('--samples', type=int, default=None, help='CEM samples (default: MPC default)')
    parser.add_argument('--iterations', type=int, default=None,
                        help='CEM iterations of a cold solve (and of a warm one unless --warm-iterations)')
    parser.add_argument('--warm-iterations', type=int, default=None,
                        help='CEM iterations of a warm-started solve (default: --iterations, else the MPC default)')
    parser.add_argument('--no-random', action='store_true', help='skip the random baseline')
    parser.add_argument('--out', default=None, help='JSON report path (a PNG plot is written beside it)')


def planner_config_from_args(args: argparse.Namespace):
    """MPCConfig with the CLI overrides applied (None: the planner's default)."""
    from dataclasses import replace

    from lewm_ros.planning.config import MPCConfig
    config = MPCConfig()
    cem = config.cem
    if args.samples is not None:
        cem = replace(cem, num_samples=args.samples, num_elites=max(2, min(cem.num_elites, args.samples)))
    if args.iterations is not None:
        cem = replace(cem, iterations=args.iterations)
        config = replace(config, warm_iterations=args.iterations)
    if args.warm_iterations is not None:
        config = replace(config, warm_iterations=args.warm_iterations)
    return replace(config, cem=cem)


def run(args: argparse.Namespace) -> int:
    from lewm_ros.model.metadata import ModelMetadata
    meta = ModelMetadata.load(args.model_dir)
    task_name = args.task or meta.task
    if not task_name:
        raise SystemExit('--task is required: the model metadata names no task')
    cfg = EvalConfig(episodes=args.episodes, goal_offset=args.goal_offset, budget=args.budget, seed=args.seed,
                     receding_blocks=args.receding_blocks)
    specs = (episodes_from_dataset(args.data, cfg) if args.data
             else episodes_from_policy(task_name, meta.image_size, cfg))
    report = evaluate(args.model_dir, specs, cfg, task_name, backend=args.backend,
                      planner_config=planner_config_from_args(args), with_random=not args.no_random)
    lewm, random = report['lewm'], report['random']
    LOG.info('LeWM success %.1f%% over %d episodes (random baseline %s); plan latency p50 %.1f ms p99 %.1f ms',
             lewm['success_rate'], lewm['episodes'],
             f"{random['success_rate']:.1f}%" if random else 'skipped',
             lewm.get('plan_latency_ms_p50', float('nan')), lewm.get('plan_latency_ms_p99', float('nan')))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + '\n')
        plot_report(report, out.with_suffix('.png'))
        LOG.info('wrote %s and %s', out, out.with_suffix('.png'))
    print(json.dumps({'lewm': lewm, 'random': random}, indent=2))
    return 0
