"""Linear (and MLP) probes from a LeWM latent to the physical state.

    lewm-train probe --model-dir models/tworoom --data data/tworoom --out probe.json

Frames of a collected dataset are encoded with the model's encoder (z: (N, D)); the episodes
are split into train / held-out sets (by episode, never by frame, so a probe never sees a
neighbour of a test frame); a closed-form ridge regression (and, with ``--mlp``, a small MLP)
maps z to every state quantity of the task (TwoRoom: agent x, y [m], vx, vy [m/s]). The
held-out Pearson r and R^2 per quantity go to a JSON file, and a scatter plot (predicted vs
true, held-out frames) to a PNG beside it. The paper reports r = 0.996 for the agent position
on TwoRoom.
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

from lewm_ros.model import LeWM, load_model
from lewm_ros.validation import check_ints, check_number, check_positive
from lewm_training.latents import encode_frames, resolve_device
from lewm_training.probe_targets import angle_errors, probe_metrics, probe_targets, state_names

log = logging.getLogger(__name__)


# ----- probes ---------------------------------------------------------------
ALPHA_GRID = tuple(float(a) for a in np.logspace(-6, 2, 17))
"""Ridge penalties tried when none is given (leave-one-out selection)."""


@dataclass(frozen=True)
class RidgeProbe:
    """y = ((z - z_mean) / z_std) @ weight + y_mean; weight (D, Q); alpha: the penalty used."""
    z_mean: np.ndarray
    z_std: np.ndarray
    weight: np.ndarray
    y_mean: np.ndarray
    alpha: float

    def predict(self, z: np.ndarray) -> np.ndarray:
        """z (N, D) -> predicted quantities (N, Q)."""
        return ((np.asarray(z, np.float64) - self.z_mean) / self.z_std) @ self.weight + self.y_mean


def fit_ridge(z: np.ndarray, y: np.ndarray, alpha: float | None = None,
              alpha_grid: tuple[float, ...] = ALPHA_GRID) -> RidgeProbe:
    """Closed-form ridge regression on standardised latents.

    Minimises mean_n ||y_n - W^T x_n||^2 + alpha ||W||^2 with x = standardised z (N, D) and y
    (N, Q) centred: W = V diag(s / (s^2 + N alpha)) U^T Y from the SVD X = U diag(s) V^T.
    ``alpha=None`` picks, from ``alpha_grid``, the penalty with the least exact leave-one-out
    error (residual_i / (1 - H_ii), summed over the standardised quantities).
    """
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    if z.ndim != 2 or y.ndim != 2 or len(z) != len(y):
        raise ValueError(f'expected z (N, D) and y (N, Q) with the same N, got {z.shape} and {y.shape}')
    if len(z) < 2:
        raise ValueError(f'ridge probe needs at least 2 samples, got {len(z)}')
    if alpha is not None:
        check_number('alpha', alpha, 0.0)
    n = len(z)
    z_mean, z_std = z.mean(axis=0), np.maximum(z.std(axis=0), 1e-8)
    y_mean = y.mean(axis=0)
    x, yc = (z - z_mean) / z_std, y - y_mean
    u, sv, vt = np.linalg.svd(x, full_matrices=False)                 # u (N, r), sv (r,), vt (r, D)
    rank = sv > sv.max() * 1e-10 if sv.size else sv.astype(bool)
    u, sv, vt = u[:, rank], sv[rank], vt[rank]
    uty = u.T @ yc                                                     # (r, Q)
    # Leave-one-out with the intercept refitted: hat matrix 11^T / N + U diag(shrink) U^T.
    outside_y = yc - u @ uty                                           # (N, Q) part of y outside span(X)
    outside_h = np.maximum(1.0 - 1.0 / n - (u ** 2).sum(axis=1), 0.0)  # (N,)
    scale = np.maximum(yc.std(axis=0), 1e-12)

    def loo_error(a: float) -> float:
        # 1 - shrink computed directly (no cancellation when N <= D and a is tiny).
        keep = n * a / (sv ** 2 + n * a)                               # (r,)
        resid = outside_y + u @ (keep[:, None] * uty)                  # (N, Q)
        one_minus_h = np.maximum(outside_h + (u ** 2) @ keep, 1e-12)   # (N,)
        return float(((resid / one_minus_h[:, None] / scale) ** 2).mean())

    if alpha is None:
        alpha = min(alpha_grid, key=loo_error)
    inv = np.divide(sv, sv ** 2 + n * alpha, out=np.zeros_like(sv), where=sv ** 2 + n * alpha > 0)
    weight = vt.T @ (inv[:, None] * uty)
    return RidgeProbe(z_mean=z_mean, z_std=z_std, weight=weight, y_mean=y_mean, alpha=float(alpha))


@dataclass(frozen=True)
class MLPProbeConfig:
    """hidden: units of each of the two hidden layers; epochs: passes over the training set;
    batch_size: samples per Adam step; lr: Adam learning rate; weight_decay: AdamW decay;
    seed: initialisation and shuffling seed."""
    hidden: int = 256
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        check_ints('mlp.', self, ('hidden', 'epochs', 'batch_size'), 1)
        check_positive('mlp.lr', self.lr)
        check_number('mlp.weight_decay', self.weight_decay, 0.0)


class MLPProbe:
    """Two-hidden-layer GELU MLP on standardised latents, predicting standardised targets."""

    def __init__(self, z_mean: np.ndarray, z_std: np.ndarray, y_mean: np.ndarray, y_std: np.ndarray,
                 net: torch.nn.Module) -> None:
        self.z_mean, self.z_std, self.y_mean, self.y_std, self.net = z_mean, z_std, y_mean, y_std, net

    @torch.inference_mode()
    def predict(self, z: np.ndarray) -> np.ndarray:
        """z (N, D) -> predicted quantities (N, Q)."""
        x = torch.as_tensor((np.asarray(z, np.float64) - self.z_mean) / self.z_std, dtype=torch.float32)
        return self.net(x).double().numpy() * self.y_std + self.y_mean


def fit_mlp(z: np.ndarray, y: np.ndarray, config: MLPProbeConfig = MLPProbeConfig()) -> MLPProbe:
    """Fit an :class:`MLPProbe` on z (N, D) -> y (N, Q) with mini-batch AdamW and an MSE loss."""
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    z_mean, z_std = z.mean(axis=0), np.maximum(z.std(axis=0), 1e-8)
    y_mean, y_std = y.mean(axis=0), np.maximum(y.std(axis=0), 1e-8)
    x = torch.as_tensor((z - z_mean) / z_std, dtype=torch.float32)
    t = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], config.hidden), torch.nn.GELU(),
        torch.nn.Linear(config.hidden, config.hidden), torch.nn.GELU(),
        torch.nn.Linear(config.hidden, t.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=config.epochs * -(-len(x) // config.batch_size))
    net.train()
    for _ in range(config.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(config.batch_size):
            loss = torch.nn.functional.mse_loss(net(x[idx]), t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return MLPProbe(z_mean, z_std, y_mean, y_std, net)


# ----- dataset -> latents ---------------------------------------------------
@dataclass(frozen=True)
class ProbeConfig:
    """val_frac: held-out fraction of episodes when ``val_episodes`` is not given (split with
    :func:`lewm_training.dataset.split_episodes`, the split ``lewm-train fit`` uses by default);
    val_episodes: explicit held-out episode positions (the rest train the probe);
    split_seed: seed of the episode split; frame_stride: use every k-th frame of an episode;
    max_frames: at most this many frames per split (random subset, ``seed``);
    ridge_alpha: ridge penalty on standardised latents (None: leave-one-out choice from
    :data:`ALPHA_GRID`); mlp: also fit an MLP probe;
    quantities: state names to probe (empty: all); batch_size: frames per encoder call."""
    val_frac: float = 0.1
    val_episodes: tuple[int, ...] = ()
    split_seed: int = 0
    frame_stride: int = 1
    max_frames: int = 20000
    ridge_alpha: float | None = None
    mlp: bool = False
    mlp_config: MLPProbeConfig = MLPProbeConfig()
    quantities: tuple[str, ...] = ()
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        check_number('val_frac', self.val_frac, 0.0, 1.0, exclusive_minimum=True, exclusive_maximum=True)
        check_ints('', self, ('frame_stride', 'max_frames', 'batch_size'), 1)
        if self.ridge_alpha is not None:
            check_number('ridge_alpha', self.ridge_alpha, 0.0)


def gather_frames(dataset, episodes: np.ndarray, stride: int, max_frames: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames of ``episodes`` (every ``stride``-th, at most ``max_frames`` drawn at random) ->
    (pixels (N, S, S, 3) uint8, state (N, state_dim) float32)."""
    pairs = [np.zeros((0, 2), np.int64)]                                    # (episode, frame) rows
    for ep in episodes:
        frames = np.arange(0, dataset.lengths[ep], stride)
        pairs.append(np.stack([np.full(len(frames), ep), frames], axis=1))
    pairs = np.concatenate(pairs)
    if len(pairs) > max_frames:
        pairs = pairs[np.sort(rng.choice(len(pairs), max_frames, replace=False))]
    pixels, state = [], []
    for ep in np.unique(pairs[:, 0]):
        frames = pairs[pairs[:, 0] == ep, 1]
        pixels.append(dataset.pixels(int(ep), frames))
        state.append(dataset.episode_state(int(ep))[frames])
    s = dataset.metadata.image_size
    if not pixels:
        return np.zeros((0, s, s, 3), np.uint8), np.zeros((0, dataset.metadata.state_dim), np.float32)
    return np.concatenate(pixels), np.concatenate(state)


@dataclass
class ProbeResult:
    """names: probed quantities; train_episodes / val_episodes: episode positions;
    metrics: {'ridge' | 'mlp': {name: {'pearson_r', 'r2'}}} on the held-out frames (names: the
    probe's targets, an angle as its cosine and sine, see :data:`ANGLES`);
    angle_metrics: {'ridge' | 'mlp': {angle: {'median_abs_error_deg', 'p90_abs_error_deg'}}} on
    the held-out frames (empty when no angle is probed);
    train_metrics: the same on the training frames (a gap shows over-fitting);
    ridge_alpha: the ridge penalty used;
    y_val (N, Q) true and predictions {'ridge' | 'mlp': (N, Q)} on the held-out frames."""
    names: list[str]
    train_episodes: list[int]
    val_episodes: list[int]
    n_train_frames: int
    n_val_frames: int
    latent_dim: int
    ridge_alpha: float
    metrics: dict[str, dict[str, dict[str, float]]]
    angle_metrics: dict[str, dict[str, dict[str, float]]]
    train_metrics: dict[str, dict[str, dict[str, float]]]
    y_val: np.ndarray
    predictions: dict[str, np.ndarray]

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ('y_val', 'predictions')}


def split_for_probe(num_episodes: int, config: ProbeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) episode positions of a dataset of ``num_episodes`` episodes."""
    from lewm_training.dataset import split_episodes
    if not config.val_episodes:
        return split_episodes(num_episodes, config.val_frac, config.split_seed)
    val = np.unique(np.asarray(config.val_episodes, np.int64))
    if val.min() < 0 or val.max() >= num_episodes:
        raise ValueError(f'val_episodes must be in [0, {num_episodes}); got {val.tolist()}')
    train = np.setdiff1d(np.arange(num_episodes), val)
    if not len(train):
        raise ValueError('val_episodes leaves no episode to train the probe on')
    return train, val


def run_probe(model: LeWM, dataset, config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Encode the dataset's frames, fit the probe(s) on the train episodes, score the held-out ones."""
    meta = dataset.metadata
    all_names = state_names(meta.task, meta.state_dim)
    names = list(config.quantities) or all_names
    unknown = sorted(set(names) - set(all_names))
    if unknown:
        raise ValueError(f'quantities {unknown} are not state entries of task {meta.task!r}; allowed: {all_names}')
    train_eps, val_eps = split_for_probe(dataset.num_episodes, config)
    if not len(val_eps):
        raise ValueError(f'the dataset has {dataset.num_episodes} episode(s): too few to hold one out')
    rng = np.random.default_rng(config.seed)
    z, y = {}, {}
    for split, eps in (('train', train_eps), ('val', val_eps)):
        pixels, state = gather_frames(dataset, eps, config.frame_stride, config.max_frames, rng)
        log.info('encoding %d %s frames from %d episodes', len(pixels), split, len(eps))
        z[split] = encode_frames(model, pixels, config.batch_size)
        targets, y[split] = probe_targets(meta.task, names, all_names, state)
    probes = {'ridge': fit_ridge(z['train'], y['train'], config.ridge_alpha)}
    if config.mlp:
        probes['mlp'] = fit_mlp(z['train'], y['train'], config.mlp_config)
    predictions = {kind: p.predict(z['val']) for kind, p in probes.items()}
    return ProbeResult(
        names=targets, train_episodes=train_eps.tolist(), val_episodes=val_eps.tolist(),
        n_train_frames=len(z['train']), n_val_frames=len(z['val']), latent_dim=int(z['train'].shape[1]),
        ridge_alpha=probes['ridge'].alpha,
        metrics={kind: probe_metrics(y['val'], pred, targets) for kind, pred in predictions.items()},
        angle_metrics={kind: angle_errors(y['val'], pred, targets) for kind, pred in predictions.items()},
        train_metrics={kind: probe_metrics(y['train'], p.predict(z['train']), targets)
                       for kind, p in probes.items()},
        y_val=y['val'], predictions=predictions)


def plot_probe(result: ProbeResult, path: Path, title: str = '') -> Path:
    """Scatter of predicted vs true per quantity (held-out frames), one panel per quantity."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    q = len(result.names)
    fig, axes = plt.subplots(1, q, figsize=(3.2 * q, 3.4), squeeze=False)
    colors = {'ridge': 'tab:blue', 'mlp': 'tab:orange'}
    for i, (ax, name) in enumerate(zip(axes[0], result.names)):
        true = result.y_val[:, i]
        for kind, pred in result.predictions.items():
            m = result.metrics[kind][name]
            ax.scatter(true, pred[:, i], s=3, alpha=0.35, color=colors[kind],
                       label=f'{kind}: r={m["pearson_r"]:.3f}, R²={m["r2"]:.3f}')
        lo, hi = float(true.min()), float(true.max())
        ax.plot([lo, hi], [lo, hi], 'k--', lw=0.8)
        ax.set_xlabel(f'true {name}')
        ax.set_ylabel(f'predicted {name}')
        ax.legend(fontsize=7, loc='upper left', markerscale=3)
    fig.suptitle(title or f'probe: {result.n_val_frames} held-out frames, {len(result.val_episodes)} episodes')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----- CLI ------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d, m = ProbeConfig(), MLPProbeConfig()
    parser.add_argument('--model-dir', type=Path, required=True, help='model directory (config.json + weights)')
    parser.add_argument('--data', type=Path, required=True, help='dataset directory written by lewm-train collect')
    parser.add_argument('--episodes-val', type=int, nargs='+', default=[], metavar='EP',
                        help='held-out episode positions (default: a --val-frac random split)')
    parser.add_argument('--val-frac', type=float, default=d.val_frac, help='(default: %(default)s)')
    parser.add_argument('--split-seed', type=int, default=d.split_seed,
                        help='episode split seed; fit uses 0 by default (default: %(default)s)')
    parser.add_argument('--frame-stride', type=int, default=d.frame_stride, help='(default: %(default)s)')
    parser.add_argument('--max-frames', type=int, default=d.max_frames,
                        help='at most this many frames per split (default: %(default)s)')
    parser.add_argument('--ridge-alpha', type=float, default=d.ridge_alpha,
                        help='ridge penalty on standardised latents (default: leave-one-out choice)')
    parser.add_argument('--quantities', nargs='+', default=[], help='state names to probe (default: all)')
    parser.add_argument('--mlp', action='store_true', help='also fit a 2-hidden-layer MLP probe')
    parser.add_argument('--mlp-epochs', type=int, default=m.epochs, help='(default: %(default)s)')
    parser.add_argument('--mlp-hidden', type=int, default=m.hidden, help='(default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=d.batch_size, help='frames per encoder call')
    parser.add_argument('--device', default='auto', help="torch device or 'auto' (default: %(default)s)")
    parser.add_argument('--seed', type=int, default=d.seed, help='(default: %(default)s)')
    parser.add_argument('--out', type=Path, default=Path('probe.json'),
                        help='JSON result; the plot goes to the same path with .png (default: %(default)s)')


def run(args: argparse.Namespace) -> int:
    from lewm_training.dataset import open_dataset
    try:
        config = ProbeConfig(
            val_frac=args.val_frac, val_episodes=tuple(args.episodes_val), split_seed=args.split_seed,
            frame_stride=args.frame_stride, max_frames=args.max_frames, ridge_alpha=args.ridge_alpha,
            mlp=args.mlp, mlp_config=MLPProbeConfig(hidden=args.mlp_hidden, epochs=args.mlp_epochs, seed=args.seed),
            quantities=tuple(args.quantities), batch_size=args.batch_size, seed=args.seed)
        model = load_model(args.model_dir, resolve_device(args.device))
        dataset = open_dataset(args.data)
        result = run_probe(model, dataset, config)
    except ValueError as exc:
        log.error('%s', exc)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {'model_dir': str(args.model_dir), 'data': str(args.data), 'task': dataset.metadata.task,
              'config': dataclasses.asdict(config), **result.to_dict()}
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    plot = plot_probe(result, args.out.with_suffix('.png'),
                      title=f'{dataset.metadata.task} probe ({args.model_dir.name}), held-out episodes')
    for kind, metrics in result.metrics.items():
        log.info('%s probe (held-out): %s', kind, ', '.join(
            f'{n} r={v["pearson_r"]:.3f} R2={v["r2"]:.3f}' for n, v in metrics.items()))
        for name, errors in result.angle_metrics[kind].items():
            log.info('%s probe (held-out): %s error median %.1f deg, p90 %.1f deg', kind, name,
                     errors['median_abs_error_deg'], errors['p90_abs_error_deg'])
    log.info('wrote %s and %s', args.out, plot)
    return 0
