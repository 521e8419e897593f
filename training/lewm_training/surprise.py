"""Surprise: the model's prediction error on normal vs perturbed transitions.

    lewm-train surprise --model-dir models/tworoom --task tworoom --episodes 50 --out surprise.json
    lewm-train surprise --model-dir models/tworoom --calibrate      (writes surprise_calibration.json)

``--calibrate`` measures the online score instead (closed-loop episodes of the default MPC
planner, :func:`lewm_training.surprise_eval.calibrate`) and writes its quantiles into the model
directory, where planner_node's surprise monitor reads them.

For each episode i rollouts of the task are made from the same start state with the same
noisy policy draws: a normal one, one in which the agent is teleported, one in which it is
recoloured and, for a task with a manipulated object (pusht), one in which the object is
teleported, all just before the same random env step (drawn per episode). Frames are
kept every ``frameskip`` env steps, as the model was trained, and the surprise of the
transition k -> k+1 is

    s_k = || pred(z_{k-h+1..k}, a_{k-h+1..k}) - z_{k+1} ||^2    (sum over the D latent dims)

with h the model's history, z the encoded frames and a the action blocks [z-scored]. The
groups compared are the transitions containing the perturbation (one per perturbed rollout)
and the same transition of the normal rollout (the matched normal group: identical up to the
perturbation). One-sided Mann-Whitney U tests (teleport > normal, recolour > normal) give
p-values; effect sizes are the common-language effect size P(perturbed > normal) (= U / n m),
the rank-biserial correlation and the ratio of medians. The paper reports that teleports are
significant (p < 0.01) while colour changes barely register.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from lewm_ros.model import LeWM, ModelMetadata, load_model_dir
from lewm_ros.validation import check_int, check_ints
from lewm_training.latents import encode_frames, resolve_device

log = logging.getLogger(__name__)

PERTURBATIONS = ('teleport', 'recolor', 'teleport_object')
"""Perturbations, each a task method ``kind(rng)``: the agent teleported or recoloured, and a
manipulated object teleported (tasks with an object: pusht's T block)."""


def perturbations_of(task) -> tuple[str, ...]:
    """The perturbations ``task`` supports, in :data:`PERTURBATIONS` order."""
    return tuple(kind for kind in PERTURBATIONS if callable(getattr(task, kind, None)))


# ----- statistics -----------------------------------------------------------
@dataclass(frozen=True)
class GroupComparison:
    """One-sided Mann-Whitney U test of ``perturbed > normal``.

    u: U statistic of the perturbed group; p_value: one-sided; auc: U / (n_perturbed n_normal),
    the probability that a perturbed transition is more surprising than a normal one (0.5: no
    effect); rank_biserial: 2 auc - 1 in [-1, 1]; median_ratio: median(perturbed) / median(normal).
    """
    n_perturbed: int
    n_normal: int
    u: float
    p_value: float
    auc: float
    rank_biserial: float
    median_ratio: float


def compare_groups(perturbed: np.ndarray, normal: np.ndarray) -> GroupComparison:
    """Test whether ``perturbed`` (n,) surprises exceed ``normal`` (m,) ones (one-sided)."""
    perturbed = np.asarray(perturbed, np.float64).ravel()
    normal = np.asarray(normal, np.float64).ravel()
    if len(perturbed) < 1 or len(normal) < 1:
        raise ValueError(f'both groups need samples, got {len(perturbed)} perturbed and {len(normal)} normal')
    if not (np.isfinite(perturbed).all() and np.isfinite(normal).all()):
        raise ValueError('surprise values must be finite')
    res = stats.mannwhitneyu(perturbed, normal, alternative='greater')
    auc = float(res.statistic) / (len(perturbed) * len(normal))
    med_normal = float(np.median(normal))
    return GroupComparison(
        n_perturbed=len(perturbed), n_normal=len(normal), u=float(res.statistic), p_value=float(res.pvalue),
        auc=auc, rank_biserial=2.0 * auc - 1.0,
        median_ratio=float(np.median(perturbed)) / med_normal if med_normal > 0 else float('inf'))


def summarize(values: np.ndarray) -> dict[str, float]:
    """n, mean, median and the 5/25/75/95 % quantiles of a group."""
    v = np.asarray(values, np.float64)
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(v) else [float('nan')] * 5
    return {'n': int(len(v)), 'mean': float(v.mean()) if len(v) else float('nan'),
            'median': float(q[2]), 'q05': float(q[0]), 'q25': float(q[1]), 'q75': float(q[3]),
            'q95': float(q[4])}


# ----- model ----------------------------------------------------------------
@torch.inference_mode()
def transition_surprise(model: LeWM, metadata: ModelMetadata, pixels: np.ndarray,
                        raw_actions: np.ndarray) -> np.ndarray:
    """Surprise of every transition of one block-resolution rollout.

    pixels: (K+1, S, S, 3) uint8 frames every ``frameskip`` env steps; raw_actions:
    (K, frameskip, A) [raw units], block k applied between frames k and k+1.
    Returns (K,) float64: s_k = ||pred_k - z_{k+1}||^2 summed over D, where pred_k is the
    predictor's last output on frames k-h+1..k and their blocks (h = model history);
    NaN for k < h - 1 (not a full history, as never seen in training).
    """
    k_blocks = len(raw_actions)
    if len(pixels) != k_blocks + 1:
        raise ValueError(f'expected K+1 = {k_blocks + 1} frames for K = {k_blocks} blocks, got {len(pixels)}')
    h = model.history
    out = np.full(k_blocks, np.nan)
    if k_blocks < h:
        return out
    device = next(model.parameters()).device
    z = torch.from_numpy(encode_frames(model, pixels)).to(device)                          # (K+1, D)
    blocks = torch.from_numpy(metadata.normalize_blocks(raw_actions)).to(device)           # (K, block)
    act = model.encode_actions(blocks[None])[0]                                            # (K, D)
    ends = torch.arange(h - 1, k_blocks, device=device)                                    # (n,)
    window = ends[:, None] + torch.arange(-h + 1, 1, device=device)                        # (n, h)
    pred = model.predict(z[window], act[window])[:, -1]                                    # (n, D)
    out[h - 1:] = ((pred - z[ends + 1]) ** 2).sum(-1).double().cpu().numpy()
    return out


# ----- rollouts -------------------------------------------------------------
@dataclass(frozen=True)
class SurpriseConfig:
    """task: registered task name; episodes: matched episode triples (normal, teleport,
    recolour); steps: env steps per rollout (>= history x frameskip, rounded down to whole
    blocks); policy: collection policy kind ('heuristic', 'random' or 'mix'); noise: heuristic
    action noise std [raw units]; seed: base seed (episode i uses SeedSequence([seed, i]))."""
    task: str = 'tworoom'
    episodes: int = 50
    steps: int = 100
    policy: str = 'heuristic'
    noise: float = 0.3
    seed: int = 42

    def __post_init__(self) -> None:
        check_ints('', self, ('episodes', 'steps'), 1)
        check_int('seed', self.seed, 0)


@dataclass(frozen=True)
class Rollout:
    """pixels (K+1, S, S, 3) uint8 every frameskip steps; actions (K, frameskip, A) raw;
    state (K+1, state_dim) float32."""
    pixels: np.ndarray
    actions: np.ndarray
    state: np.ndarray


def rollout(task, policy, blocks: int, frameskip: int, env_seed: int,
            perturb_step: int | None = None, perturb=None) -> Rollout:
    """Roll ``blocks`` x ``frameskip`` env steps from ``task.reset(seed=env_seed)``.

    ``perturb(task)`` (e.g. a teleport) is applied just before env step ``perturb_step``,
    before the policy chooses that step's action.
    """
    obs, _ = task.reset(seed=env_seed)
    pixels, state = [obs.pixels], [obs.state]
    actions = np.empty((blocks * frameskip, task.action_dim), np.float64)
    for t in range(blocks * frameskip):
        if t == perturb_step:
            perturb(task)
        actions[t] = np.clip(policy(task), task.action_low, task.action_high)
        obs, *_ = task.step(actions[t])
        if (t + 1) % frameskip == 0:
            pixels.append(obs.pixels)
            state.append(obs.state)
    return Rollout(np.stack(pixels), actions.reshape(blocks, frameskip, task.action_dim), np.stack(state))


@dataclass
class SurpriseResult:
    """records: per episode {episode, block, step, normal, <perturbation>...} (the surprise of
    transition ``block`` -> ``block`` + 1, perturbation before env ``step``); groups: summaries of
    'normal' (matched), each perturbation of the task (:func:`perturbations_of`) and 'normal_all'
    (every full-history transition of the normal rollouts); tests: {perturbation: GroupComparison
    vs matched normal}."""
    records: list[dict]
    groups: dict[str, dict[str, float]]
    tests: dict[str, GroupComparison]
    normal_all: np.ndarray

    def group(self, name: str) -> np.ndarray:
        return np.array([r[name] for r in self.records], np.float64)

    def to_dict(self) -> dict:
        return {'groups': self.groups, 'tests': {k: dataclasses.asdict(v) for k, v in self.tests.items()},
                'records': self.records}


def _perturbation(kind: str, rng: np.random.Generator):
    """``task -> None`` applying ``task.<kind>(rng)`` (a name of :data:`PERTURBATIONS`)."""
    return lambda task: getattr(task, kind)(rng)


def run_surprise(model: LeWM, metadata: ModelMetadata, config: SurpriseConfig) -> SurpriseResult:
    """Roll matched normal and perturbed episodes (each perturbation of the task) and test the
    surprise differences."""
    from lewm_training.policies import PolicyConfig, make_policy
    from lewm_training.tasks import make_task

    fs, h = metadata.frameskip, model.history
    blocks = config.steps // fs
    if blocks < h:
        raise ValueError(f'steps={config.steps} gives {blocks} blocks of {fs}; the model needs >= history={h}, '
                         f'so steps >= {h * fs}')
    policy_config = PolicyConfig(kind=config.policy, noise=config.noise)
    task = make_task(config.task, image_size=metadata.image_size, seed=config.seed)
    if task.action_dim != metadata.action_dim:
        raise ValueError(f'task {config.task!r} has action_dim={task.action_dim} but the model was trained '
                         f'with {metadata.action_dim}')
    kinds = perturbations_of(task)
    records, normal_all = [], []
    try:
        for ep in range(config.episodes):
            env_seq, policy_seq, step_seq, *perturb_seqs = np.random.SeedSequence([config.seed, ep]).spawn(
                2 + 1 + len(PERTURBATIONS))
            env_seed = int(env_seq.generate_state(1)[0])
            draw = np.random.default_rng(step_seq)
            block = int(draw.integers(h - 1, blocks))      # the perturbation falls inside block k -> k+1
            step = block * fs + int(draw.integers(0, fs))
            record = {'episode': ep, 'block': block, 'step': step}
            seqs = dict(zip(PERTURBATIONS, perturb_seqs))  # a perturbation's seeds do not depend on the task's set
            for kind, seq in (('normal', None), *((kind, seqs[kind]) for kind in kinds)):
                _, policy = make_policy(policy_config, task, np.random.default_rng(policy_seq))
                perturb = None if seq is None else _perturbation(kind, np.random.default_rng(seq))
                run = rollout(task, policy, blocks, fs, env_seed, None if seq is None else step, perturb)
                s = transition_surprise(model, metadata, run.pixels, run.actions)
                record[kind] = float(s[block])
                if kind == 'normal':
                    normal_all.append(s[h - 1:])
            records.append(record)
    finally:
        task.close()
    result_groups = {name: np.array([r[name] for r in records]) for name in ('normal', *kinds)}
    normal_all_arr = np.concatenate(normal_all)
    groups = {name: summarize(v) for name, v in result_groups.items()}
    groups['normal_all'] = summarize(normal_all_arr)
    tests = {kind: compare_groups(result_groups[kind], result_groups['normal']) for kind in kinds}
    for kind in kinds:
        groups[kind]['paired_fraction_greater'] = float(np.mean(result_groups[kind] > result_groups['normal']))
    return SurpriseResult(records=records, groups=groups, tests=tests, normal_all=normal_all_arr)


def plot_surprise(result: SurpriseResult, path: Path, title: str = '') -> Path:
    """Box + strip plot (log scale) of the matched normal group and each perturbed group."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    kinds = list(result.tests)
    names = ['normal', *kinds]
    data = [result.group(n) for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.boxplot(data, showfliers=False, widths=0.5)
    jitter = np.random.default_rng(0)
    colors = ['tab:gray', 'tab:red', 'tab:purple', 'tab:orange']
    for i, (values, color) in enumerate(zip(data, colors), start=1):
        ax.scatter(i + jitter.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.6, color=color, zorder=3)
    labels = [f'normal (matched)\nn={len(data[0])}']
    for kind in kinds:
        t = result.tests[kind]
        labels.append(f'{kind}\np={t.p_value:.2g}\nP(>normal)={t.auc:.2f}')
    ax.set_xticks(range(1, len(names) + 1), labels, fontsize=9)
    values = np.concatenate(data)
    if values.min() > 0 and values.max() / values.min() > 20:  # heavy tail: log scale
        ax.set_yscale('log')
    ax.set_ylabel('surprise ||pred - z_next||² (latent units²)')
    ax.set_title(title or 'surprise of the transition containing the perturbation')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----- CLI ------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = SurpriseConfig()
    parser.add_argument('--model-dir', type=Path, required=True, help='model directory (with lewm_meta.json)')
    parser.add_argument('--task', default='', help="registered task name (default: the model's metadata.task)")
    parser.add_argument('--episodes', type=int, default=d.episodes,
                        help='matched episode groups (normal, teleport, recolour, and an object teleport where the '
                        'task has an object) (default: %(default)s)')
    parser.add_argument('--steps', type=int, default=d.steps, help='env steps per rollout (default: %(default)s)')
    parser.add_argument('--policy', choices=('heuristic', 'random', 'mix'), default=d.policy,
                        help='(default: %(default)s)')
    parser.add_argument('--noise', type=float, default=d.noise, help='heuristic action noise (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=d.seed, help='(default: %(default)s)')
    parser.add_argument('--device', default='auto', help="torch device or 'auto' (default: %(default)s)")
    parser.add_argument('--out', type=Path, default=Path('surprise.json'),
                        help='JSON result; the plot goes to the same path with .png (default: %(default)s)')
    parser.add_argument('--calibrate', action='store_true',
                        help='write surprise_calibration.json into --model-dir (normal closed-loop episodes)')
    parser.add_argument('--calibrate-episodes', type=int, default=60, help='(default: %(default)s)')
    parser.add_argument('--calibrate-blocks', type=int, default=10, help='blocks per episode (default: %(default)s)')


def run(args: argparse.Namespace) -> int:
    if args.calibrate:
        from lewm_training.surprise_eval import calibrate
        try:
            record = calibrate(args.model_dir, args.calibrate_episodes, args.calibrate_blocks, args.seed)
        except ValueError as exc:
            log.error('%s', exc)
            return 2
        log.info('wrote %s: %s over %d transitions', record.save(args.model_dir), record.quantiles, record.samples)
        return 0
    try:
        from lewm_training.tasks import require_default_task
        model, metadata = load_model_dir(args.model_dir, resolve_device(args.device))
        require_default_task(metadata, args.model_dir, 'lewm-train surprise')
        task = args.task or metadata.task
        if not task:
            raise ValueError(f'--task is required: {args.model_dir} metadata names no task')
        config = SurpriseConfig(task=task, episodes=args.episodes, steps=args.steps, policy=args.policy,
                                noise=args.noise, seed=args.seed)
        result = run_surprise(model, metadata, config)
    except ValueError as exc:
        log.error('%s', exc)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {'model_dir': str(args.model_dir), 'config': dataclasses.asdict(config),
              'frameskip': metadata.frameskip, 'history': model.history, **result.to_dict()}
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    plot = plot_surprise(result, args.out.with_suffix('.png'), title=f'{task} surprise ({args.model_dir.name})')
    for kind, t in result.tests.items():
        log.info('%s > normal: p=%.3g, P(perturbed > normal)=%.2f, median ratio %.2f (n=%d)',
                 kind, t.p_value, t.auc, t.median_ratio, t.n_perturbed)
    log.info('wrote %s and %s', args.out, plot)
    return 0
