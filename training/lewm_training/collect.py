"""Collect episodes from a MuJoCo task into a crash-safe, resumable HDF5 dataset.

    lewm-train collect --task tworoom --episodes 2000 --steps 100 --image-size 64 \\
        --out data/tworoom --workers 2 --seed 0 --policy mix --heuristic-frac 0.5

Episode ``i`` is a pure function of ``(seed, i)`` and the collection settings:
its start state and policy draws come from ``numpy.random.SeedSequence([seed, i])``.
Interrupting (Ctrl-C, ``kill -9``) and re-running the same command resumes and
yields the same dataset as one uninterrupted run.

The dataset format (manifest, shard layout) is :mod:`lewm_training.dataset_format`; the manifest
is the :class:`~lewm_training.dataset_format.DatasetInfo` of the collection settings.

Read it with :func:`lewm_training.dataset.open_dataset`.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Callable

import h5py
import numpy as np
from tqdm import tqdm

from lewm_ros.validation import check_int, check_ints
from lewm_training.dataset_format import (MANIFEST_NAME, POLICY_CODES, DatasetInfo, atomic_write_bytes, fsync_dir,
                                          shard_name, write_shard_attributes)
from lewm_training.policies import POLICY_KINDS, PolicyConfig, make_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectConfig:
    """What to collect (everything that determines the data).

    task: registered task name; task_kwargs: extra constructor arguments.
    episodes: number of episodes (>= 1); steps: env steps per episode (>= 1),
        giving steps + 1 frames.
    image_size: S in pixels, 8..1024.
    seed: base seed; episode i uses SeedSequence([seed, i]).
    episodes_per_shard: episodes per shard file (>= 1); the unit of resumption.
    policy: see :class:`~lewm_training.policies.PolicyConfig`.
    """

    task: str = 'tworoom'
    episodes: int = 2000
    steps: int = 100
    image_size: int = 64
    seed: int = 0
    episodes_per_shard: int = 20
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    task_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ints('', self, ('episodes', 'steps', 'episodes_per_shard'), 1)
        check_int('seed', self.seed, 0)
        check_int('image_size', self.image_size, 8, 1024)

    def shard_episodes(self, shard: int) -> range:
        start = shard * self.episodes_per_shard
        return range(start, min(start + self.episodes_per_shard, self.episodes))


def build_info(config: CollectConfig) -> DatasetInfo:
    """The manifest record of ``config`` (needs one task instance for dt, action bounds, state width)."""
    from lewm_training.tasks import make_task
    task = make_task(config.task, image_size=config.image_size, **config.task_kwargs)
    return DatasetInfo(task=config.task, task_kwargs=dict(config.task_kwargs), image_size=config.image_size,
                       dt=task.dt, action_low=task.action_low, action_high=task.action_high,
                       action_dim=task.action_dim, state_dim=task.state_dim, seed=config.seed,
                       episodes=config.episodes, steps=config.steps, episodes_per_shard=config.episodes_per_shard,
                       policy=asdict(config.policy))


def prepare_output(out: Path, info: DatasetInfo) -> list[int]:
    """Create/validate ``out``; return the shard indices still to collect.

    Raises ValueError when ``out`` holds a dataset collected with other settings.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest = info.to_manifest()
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        for key in sorted(set(existing) | set(manifest)):
            if existing.get(key) != manifest.get(key):
                raise ValueError(
                    f'{out} was collected with {key}={existing.get(key)!r}, this run has '
                    f'{key}={manifest.get(key)!r}; use another --out or the original settings')
    else:
        atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2).encode())
    for stale in out.glob('.*.tmp'):
        log.info('removing incomplete file %s', stale)
        stale.unlink(missing_ok=True)
    return [k for k in range(info.num_shards) if not (out / shard_name(k)).exists()]


def run_episode(task, config: CollectConfig, episode: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Roll out episode ``episode``: (pixels (T+1,S,S,3) uint8, actions (T+1,A) f32 with NaN
    last row, state (T+1,state_dim) f32, policy kind)."""
    env_seq, policy_seq = np.random.SeedSequence([config.seed, episode]).spawn(2)
    obs, _ = task.reset(seed=int(env_seq.generate_state(1)[0]))
    kind, policy = make_policy(config.policy, task, np.random.default_rng(policy_seq))
    n = config.steps + 1
    pixels = np.empty((n, config.image_size, config.image_size, 3), np.uint8)
    actions = np.full((n, task.action_dim), np.nan, np.float32)
    state = np.empty((n, task.state_dim), np.float32)
    pixels[0], state[0] = obs.pixels, obs.state
    for t in range(config.steps):
        action = np.clip(policy(task), task.action_low, task.action_high)
        actions[t] = action
        obs, *_ = task.step(action)
        pixels[t + 1], state[t + 1] = obs.pixels, obs.state
    return pixels, actions, state, kind


def write_shard(out: Path, shard: int, config: CollectConfig, info: DatasetInfo,
                progress: Callable[[int], None] | None = None) -> int:
    """Collect shard ``shard`` into ``out`` (temp file, then atomic rename); returns its episode count."""
    task = _task_cache(config)
    episodes = config.shard_episodes(shard)
    final = out / shard_name(shard)
    tmp = out / f'.{final.name}.{os.getpid()}.tmp'
    try:
        _write_shard_file(tmp, task, config, info, episodes, progress)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with open(tmp, 'rb') as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(out)
    return len(episodes)


def _write_shard_file(tmp: Path, task, config: CollectConfig, info: DatasetInfo, episodes: range,
                      progress: Callable[[int], None] | None) -> None:
    frames_per_episode = config.steps + 1
    n = len(episodes) * frames_per_episode
    s = config.image_size
    with h5py.File(tmp, 'w', track_order=True) as f:
        pixels = f.create_dataset('pixels', (n, s, s, 3), np.uint8, chunks=(1, s, s, 3),
                                  compression='gzip', compression_opts=4)
        actions = f.create_dataset('actions', (n, task.action_dim), np.float32)
        state = f.create_dataset('state', (n, task.state_dim), np.float32)
        policies = np.empty(len(episodes), np.uint8)
        for j, episode in enumerate(episodes):
            ep_pixels, ep_actions, ep_state, kind = run_episode(task, config, episode)
            sl = slice(j * frames_per_episode, (j + 1) * frames_per_episode)
            pixels[sl], actions[sl], state[sl] = ep_pixels, ep_actions, ep_state
            policies[j] = POLICY_CODES[kind]
            if progress is not None:
                progress(1)
        f['episode_starts'] = np.arange(len(episodes) + 1, dtype=np.int64) * frames_per_episode
        f['episode_ids'] = np.asarray(episodes, dtype=np.int64)
        f['episode_policy'] = policies
        write_shard_attributes(f, info, config.policy.kind, with_seed=True,
                               heuristic_frac=config.policy.heuristic_frac)


_TASKS: dict = {}


def _task_cache(config: CollectConfig):
    """One task (and renderer) per process and task configuration."""
    from lewm_training.tasks import make_task
    key = (config.task, config.image_size, json.dumps(config.task_kwargs, sort_keys=True))
    if key not in _TASKS:
        _TASKS[key] = make_task(config.task, image_size=config.image_size, **config.task_kwargs)
    return _TASKS[key]


# ----- worker processes -----------------------------------------------------
_PROGRESS: mp.Queue | None = None


def _init_worker(progress_queue: mp.Queue, parent_pid: int) -> None:
    """Ignore Ctrl-C (the parent handles it) and die with the parent (Linux)."""
    global _PROGRESS
    _PROGRESS = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith('linux'):
        pr_set_pdeathsig = 1
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _worker_shard(job: tuple[str, int, CollectConfig, DatasetInfo]) -> int:
    out, shard, config, info = job
    return write_shard(Path(out), shard, config, info, progress=_PROGRESS.put)


def collect(config: CollectConfig, out: Path, workers: int = 2) -> Path:
    """Collect (or resume collecting) ``config`` into the directory ``out``; returns ``out``."""
    check_int('workers', workers, 1)
    info = build_info(config)
    todo = prepare_output(out, info)
    done_episodes = config.episodes - sum(len(config.shard_episodes(k)) for k in todo)
    log.info('%s: %d/%d episodes present, %d shards to collect with %d worker(s)',
             out, done_episodes, config.episodes, len(todo), workers)
    with tqdm(total=config.episodes, initial=done_episodes, unit='ep', smoothing=0.1,
              desc=f'collect {config.task}') as bar:
        if workers == 1 or len(todo) <= 1:
            for shard in todo:
                write_shard(out, shard, config, info, progress=bar.update)
            return out
        ctx = mp.get_context('spawn')
        progress_queue = ctx.Queue()
        with ctx.Pool(min(workers, len(todo)), initializer=_init_worker,
                      initargs=(progress_queue, os.getpid())) as pool:
            result = pool.map_async(_worker_shard, [(str(out), k, config, info) for k in todo],
                                    chunksize=1)
            while not result.ready():
                try:
                    bar.update(progress_queue.get(timeout=0.2))
                except queue.Empty:
                    pass
            result.get()
    return out


# ----- CLI ----------------------------------------------------------------
def _parse_task_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'--task-arg {text!r}: expected KEY=VALUE')
    if value in ('True', 'False'):   # Python's spelling of JSON true / false
        return key, value == 'True'
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = CollectConfig()
    p = PolicyConfig()
    parser.add_argument('--task', default=d.task, help='registered task name (default: %(default)s)')
    parser.add_argument('--task-arg', type=_parse_task_arg, action='append', default=[],
                        metavar='KEY=VALUE', help='extra task constructor argument, e.g. target_size=0.015')
    parser.add_argument('--episodes', type=int, default=d.episodes, help='(default: %(default)s)')
    parser.add_argument('--steps', type=int, default=d.steps, help='env steps per episode (default: %(default)s)')
    parser.add_argument('--image-size', type=int, default=d.image_size, help='[px] (default: %(default)s)')
    parser.add_argument('--out', type=Path, required=True, help='dataset directory (created or resumed)')
    parser.add_argument('--workers', type=int, default=2, help='worker processes (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=d.seed, help='(default: %(default)s)')
    parser.add_argument('--policy', choices=POLICY_KINDS, default=p.kind, help='(default: %(default)s)')
    parser.add_argument('--heuristic-frac', type=float, default=p.heuristic_frac,
                        help="fraction of heuristic episodes for --policy mix (default: %(default)s)")
    parser.add_argument('--noise', type=float, default=p.noise,
                        help='heuristic action noise std [raw units] (default: %(default)s)')
    parser.add_argument('--episodes-per-shard', type=int, default=d.episodes_per_shard,
                        help='episodes per shard file, the unit of resumption (default: %(default)s)')


def run(args: argparse.Namespace) -> int:
    try:
        config = CollectConfig(
            task=args.task, episodes=args.episodes, steps=args.steps, image_size=args.image_size,
            seed=args.seed, episodes_per_shard=args.episodes_per_shard,
            policy=PolicyConfig(kind=args.policy, heuristic_frac=args.heuristic_frac, noise=args.noise),
            task_kwargs=dict(args.task_arg))
        collect(config, args.out, workers=args.workers)
    except ValueError as exc:
        log.error('%s', exc)
        return 2
    except KeyboardInterrupt:
        log.warning('interrupted: complete shards are kept; re-run the same command to resume')
        return 130
    log.info('dataset complete: %s', args.out)
    return 0
