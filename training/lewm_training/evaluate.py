"""``lewm-train eval``: closed-loop success rate under the paper's protocol.

Protocol (LeWM v3): start from a state on a held-out trajectory, goal = the frame
``goal_offset`` (25) env steps later on that trajectory, ``budget`` (50) env steps,
N episodes drawn with a fixed seed (42). An episode succeeds when the task's success
test holds at any env step within the budget (the paper's success); every episode runs the
whole budget, so the report also gives final-state success (the test holds after the last
step: the robot reached the goal and stayed) and both rates by start-to-goal distance. The
random baseline runs the SAME episodes with the collection random-walk policy; always report both.

Planning goes through ``lewm_ros.planning`` (the MPC planner the robot runs): the planner
observes a frame at every block boundary (every ``frameskip`` env steps) with the raw actions
executed in that block, and replans every ``receding_blocks`` blocks. The planner itself
comes from :mod:`lewm_training.planner_args` (``--paper``, ``--params FILE`` or one flag per setting).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lewm_ros.planning.config import resolve_mode
from lewm_ros.runtime.policy_format import has_policy
from lewm_ros.validation import check_ints, require
from lewm_training.planner_args import PlannerChoice, add_planner_arguments, describe, planner_from_args
from lewm_training.policies import RandomWalkPolicy
from lewm_training.tasks import make_task, require_default_task

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: start and goal states (state_dim,) and where they came from."""
    start_state: np.ndarray
    goal_state: np.ndarray
    source: str


@dataclass
class EpisodeResult:
    """success: the success test held at some env step within the budget (the paper's success);
    first_success_step: the first such env step (None: never); final_success: it holds after the
    last env step; steps: env steps run (= the budget); start/final/min distance [task units];
    plan_latencies_s: every plan's latency [s]; costs: every plan's cost; disagreements: plans
    on which the world model scored the policy's proposal far above CEM's best (mode policy_cem)."""
    success: bool
    steps: int
    start_distance: float
    final_distance: float
    min_distance: float
    first_success_step: int | None = None
    final_success: bool = False
    plan_latencies_s: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    disagreements: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """episodes: N; goal_offset: env steps from start to goal on the trajectory (25);
    budget: env steps allowed (50); seed: episode draw seed (42); receding_blocks: blocks executed
    per plan (1 = replan at every block; the reference executes the whole plan, H);
    distance_bins: inner edges of the start-to-goal distance bins of the report [task units,
    increasing]."""
    episodes: int = 50
    goal_offset: int = 25
    budget: int = 50
    seed: int = 42
    receding_blocks: int = 1
    distance_bins: tuple[float, ...] = (0.2, 0.4, 0.6)

    def __post_init__(self) -> None:
        check_ints('', self, ('episodes', 'goal_offset', 'budget', 'receding_blocks'), 1)
        edges = list(self.distance_bins)
        require(all(b > a for a, b in zip(edges, edges[1:])) and all(e > 0 for e in edges), 'distance_bins',
                edges, 'positive and increasing')


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
    """Start/goal pairs from fresh trajectories of the collection policy mix (seeded, held out by
    seed; :func:`~lewm_training.policies.protocol_pair`)."""
    from lewm_training.policies import make_policy, protocol_pair, protocol_policy_config
    task = make_task(task_name, image_size=image_size, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 10_000)
    policy_config = protocol_policy_config(task, heuristic_frac)
    specs = []
    for i in range(cfg.episodes):
        task.reset(seed=cfg.seed * 1000 + i)
        _, policy = make_policy(policy_config, task, rng)
        start, goal = protocol_pair(task, policy, cfg.goal_offset)
        specs.append(EpisodeSpec(start, goal, f'policy rollout {i}'))
    task.close()
    return specs


def run_planner_episode(task, planner, spec: EpisodeSpec, cfg: EvalConfig) -> EpisodeResult:
    """Closed loop over the whole budget: observe at block boundaries, replan every
    ``receding_blocks`` blocks."""
    obs, _ = task.reset(options={'state': spec.start_state})
    planner.reset()
    planner.set_goal(task.render_state(spec.goal_state))
    planner.observe(obs.pixels, None)
    start = task.distance(obs.state, spec.goal_state)
    result = EpisodeResult(False, 0, start, start, start)
    while result.steps < cfg.budget:
        plan = planner.plan()
        result.plan_latencies_s.append(float(plan.latency_s))
        result.costs.append(float(plan.cost))
        result.disagreements += int(plan.disagreement)
        for block in plan.raw_actions[:cfg.receding_blocks]:
            for action in block:
                obs = task.step(action)[0]
                result.steps += 1
                _update(result, task, obs.state, spec.goal_state)
                if result.steps >= cfg.budget:
                    return result
            planner.observe(obs.pixels, np.asarray(block))
    return result


def run_random_episode(task, spec: EpisodeSpec, cfg: EvalConfig, seed: int) -> EpisodeResult:
    """The random baseline on the same episode: the collection random walk."""
    obs, _ = task.reset(options={'state': spec.start_state})
    policy = RandomWalkPolicy(task, np.random.default_rng(seed))
    start = task.distance(obs.state, spec.goal_state)
    result = EpisodeResult(False, 0, start, start, start)
    while result.steps < cfg.budget:
        obs = task.step(policy(task))[0]
        result.steps += 1
        _update(result, task, obs.state, spec.goal_state)
    return result


def _update(result: EpisodeResult, task, state: np.ndarray, goal: np.ndarray) -> None:
    distance = task.distance(state, goal)
    result.final_distance = distance
    result.min_distance = min(result.min_distance, distance)
    result.final_success = bool(task.is_success(state, goal))
    if result.final_success and not result.success:
        result.success, result.first_success_step = True, result.steps


def _rate(flags: list[bool]) -> float:
    """Percentage of true flags [%] (0 for none)."""
    return 100.0 * float(np.mean(flags)) if flags else 0.0


def summarize(results: list[EpisodeResult], distance_bins: tuple[float, ...] = ()) -> dict:
    """Any-step and final-state success [%], mean env steps to the first success, mean final
    distance [task units], success by start-to-goal distance (bins between ``distance_bins``
    edges) and plan latency percentiles [ms] of a list of episode results."""
    latencies = [x for r in results for x in r.plan_latencies_s]
    reached = [r.first_success_step for r in results if r.success]
    summary = {
        'episodes': len(results),
        'success_rate': _rate([r.success for r in results]),
        'final_success_rate': _rate([r.final_success for r in results]),
        'mean_steps_to_success': float(np.mean(reached)) if reached else None,
        'mean_final_distance': float(np.mean([r.final_distance for r in results])) if results else 0.0,
        'by_start_distance': _by_distance(results, distance_bins),
    }
    if latencies:
        summary['plan_latency_ms_p50'] = 1e3 * float(np.percentile(latencies, 50))
        summary['plan_latency_ms_p99'] = 1e3 * float(np.percentile(latencies, 99))
        summary['plans'] = len(latencies)
        summary['policy_disagreements'] = sum(r.disagreements for r in results)
    return summary


def _by_distance(results: list[EpisodeResult], edges: tuple[float, ...]) -> list[dict]:
    """One entry per start-distance bin [lo, hi) [task units]: episodes, any-step and final success [%]."""
    bounds = [0.0, *edges, float('inf')]
    bins = []
    for lo, hi in zip(bounds, bounds[1:]):
        inside = [r for r in results if lo <= r.start_distance < hi]
        bins.append({'start_distance': [lo, hi if hi < float('inf') else None], 'episodes': len(inside),
                     'success_rate': _rate([r.success for r in inside]),
                     'final_success_rate': _rate([r.final_success for r in inside])})
    return bins


def evaluate(model_dir: str | Path, specs: list[EpisodeSpec], cfg: EvalConfig, task_name: str,
             backend: str = 'torch', planner_config=None, with_random: bool = True,
             progress: bool = True, random_results: list[EpisodeResult] | None = None) -> dict:
    """Run the planner (``planner_config``: an MPCConfig, None = its default; critics in its
    ``cost``) and the random baseline on ``specs``; returns the JSON-able report.
    ``random_results``: the baseline already run on these specs (it does not depend on the model)."""
    from lewm_ros.planning.mpc import MPCPlanner
    planner = MPCPlanner.from_model_dir(model_dir, backend=backend, config=planner_config)
    task = make_task(task_name, image_size=planner.metadata.image_size, seed=cfg.seed)
    random = list(random_results or [])
    planned = []
    started = time.perf_counter()
    bar = tqdm(specs, desc='eval', unit='ep', disable=not progress)
    for i, spec in enumerate(bar):
        planned.append(run_planner_episode(task, planner, spec, cfg))
        if with_random and random_results is None:
            random.append(run_random_episode(task, spec, cfg, seed=cfg.seed + i))
        bar.set_postfix(success=f'{_rate([r.success for r in planned]):.0f}%',
                        random=f'{_rate([r.success for r in random[:i + 1]]):.0f}%' if random else '-')
    task.close()
    return {
        'model_dir': str(model_dir), 'task': task_name, 'backend': backend, 'protocol': asdict(cfg),
        'planner_config': _jsonable(planner.config),
        'lewm': summarize(planned, cfg.distance_bins),
        'random': summarize(random, cfg.distance_bins) if random else None,
        'wall_time_s': time.perf_counter() - started,
        'episodes': [{'source': s.source, 'lewm': asdict(p), 'random': asdict(r) if random else None}
                     for s, p, r in zip(specs, planned, random or [None] * len(planned))],
    }


def random_baseline(specs: list[EpisodeSpec], cfg: EvalConfig, task_name: str, image_size: int
                    ) -> list[EpisodeResult]:
    """The random baseline alone on ``specs`` (episode i seeded ``cfg.seed + i``, as in :func:`evaluate`)."""
    task = make_task(task_name, image_size=image_size, seed=cfg.seed)
    try:
        return [run_random_episode(task, spec, cfg, seed=cfg.seed + i) for i, spec in enumerate(specs)]
    finally:
        task.close()


def _jsonable(obj):
    try:
        return json.loads(json.dumps(asdict(obj), default=str))
    except TypeError:
        return str(obj)


def plot_report(report: dict, path: str | Path) -> Path:
    """Bar chart (LeWM vs random, any-step and final-state success) + final-distance histogram."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    random = report['random'] or {}
    for offset, key, label in ((-0.2, 'success_rate', 'any step'), (0.2, 'final_success_rate', 'final state')):
        rates = [report['lewm'][key], random.get(key, 0.0)]
        axes[0].bar([x + offset for x in (0, 1)], rates, width=0.4, label=label)
        for x, rate in enumerate(rates):
            axes[0].text(x + offset, rate + 2, f'{rate:.0f}%', ha='center', fontsize=8)
    axes[0].set_xticks([0, 1], ['LeWM (MPC)', 'random'])
    axes[0].set_ylim(0, 110)
    axes[0].set_ylabel('success [%]')
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"{report['task']}: {report['lewm']['episodes']} episodes, "
                      f"budget {report['protocol']['budget']} steps")
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


def add_arguments(parser: argparse.ArgumentParser, model_dir: bool = True) -> None:
    """Protocol, episode source and backend flags, and the planner flags of
    :func:`lewm_training.planner_args.add_planner_arguments`."""
    if model_dir:
        parser.add_argument('--model-dir', required=True,
                            help='model directory (config.json, weights.pt, lewm_meta.json)')
        parser.add_argument('--out', default=None, help='JSON report path (a PNG plot is written beside it)')
    parser.add_argument('--task', default=None, help='task name (default: the model metadata task)')
    parser.add_argument('--data', default=None, help='dataset whose validation episodes give start/goal pairs '
                        '(default: fresh seeded rollouts of the collection policy mix)')
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--goal-offset', type=int, default=25, help='env steps from start to goal')
    parser.add_argument('--budget', type=int, default=50, help='env steps allowed')
    parser.add_argument('--seed', type=int, default=42, help='episode seed')
    parser.add_argument('--distance-bins', type=float, nargs='+', default=list(EvalConfig.distance_bins),
                        help='inner edges of the start-to-goal distance bins of the report [task units]')
    parser.add_argument('--backend', default='torch', choices=['torch', 'onnxruntime', 'tensorrt'])
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    parser.add_argument('--no-random', action='store_true', help='skip the random baseline')
    add_planner_arguments(parser)


def protocol_from_args(args: argparse.Namespace, meta, model_dir: str | Path) -> tuple[EvalConfig, str,
                                                                                      list[EpisodeSpec], PlannerChoice]:
    """(protocol, task name, episodes, planner) from the CLI, planner mode 'auto' resolved for
    ``model_dir`` (policy_cem when it ships a policy); ValueError / SystemExit with the reason."""
    task_name = args.task or meta.task
    if not task_name:
        raise SystemExit('--task is required: the model metadata names no task')
    try:
        require_default_task(meta, model_dir, 'lewm-train eval')
        choice = planner_from_args(args)
        choice = replace(choice, config=replace(choice.config, mode=resolve_mode(choice.config.mode,
                                                                                  has_policy(model_dir))))
        cfg = EvalConfig(episodes=args.episodes, goal_offset=args.goal_offset, budget=args.budget, seed=args.seed,
                         receding_blocks=choice.receding_blocks, distance_bins=tuple(args.distance_bins))
    except ValueError as exc:
        raise SystemExit(f'lewm-train eval: {exc}') from None
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    specs = (episodes_from_dataset(args.data, cfg) if args.data
             else episodes_from_policy(task_name, meta.image_size, cfg))
    return cfg, task_name, specs, choice


def run(args: argparse.Namespace) -> int:
    from lewm_ros.model.metadata import ModelMetadata
    meta = ModelMetadata.load(args.model_dir)
    cfg, task_name, specs, choice = protocol_from_args(args, meta, args.model_dir)
    LOG.info('planner %s', describe(choice))
    report = evaluate(args.model_dir, specs, cfg, task_name, backend=args.backend, planner_config=choice.config,
                      with_random=not args.no_random)
    report['planner'] = describe(choice)
    report['command'] = shlex.join(['lewm-train', 'eval', *sys.argv[2:]])
    lewm, random = report['lewm'], report['random']
    LOG.info('LeWM success %.1f%% any step / %.1f%% final over %d episodes (random baseline %s); plan latency '
             'p50 %.1f ms p99 %.1f ms', lewm['success_rate'], lewm['final_success_rate'], lewm['episodes'],
             f"{random['success_rate']:.1f}% / {random['final_success_rate']:.1f}%" if random else 'skipped',
             lewm.get('plan_latency_ms_p50', float('nan')), lewm.get('plan_latency_ms_p99', float('nan')))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + '\n')
        plot_report(report, out.with_suffix('.png'))
        LOG.info('wrote %s and %s', out, out.with_suffix('.png'))
    print(json.dumps({'planner': report['planner'], 'lewm': lewm, 'random': random}, indent=2))
    return 0
