"""Convert an HDF5 file of the LeWM authors' ``stable-worldmodel`` library into an episode dataset.

    lewm-train convert ~/.stable-wm/pusht_expert_train.h5 --out data/pusht [--image-size 64] \\
        [--task pusht] [--dt 0.1] [--state-key auto] [--episodes-per-shard 20]

The source layout (the layout of the paper's published datasets, e.g. ``pusht_expert_train.h5``
from the Hugging Face collection ``quentinll/lewm`` named in ``lucas-maes/le-wm`` README.md), as
read in the public sources of ``galilai-group/stable-worldmodel``:

* ``stable_worldmodel/world.py`` at commit 53a4776 (March 2026, the paper's datasets' time; the
  HDF5 writer ``_init_h5`` / ``_write_episode``) and ``stable_worldmodel/data/formats/hdf5.py``
  (``HDF5Writer`` / ``HDF5Dataset``, current), ``stable_worldmodel/world/world.py`` (``collect``),
  ``stable_worldmodel/wrapper/default.py`` (what a row holds), ``docs/api/dataset.md``;
  ``lucas-maes/le-wm`` ``config/train/data/pusht.yaml`` (columns LeWM trains on: ``pixels``,
  ``action``, ``proprio``, ``state``) and ``train.py`` (NaN actions at episode ends).

One ``.h5`` file, one dataset per column, all episodes' rows concatenated on axis 0 (N rows):

* ``ep_len`` (E,) int32 rows per episode; ``ep_offset`` (E,) int64 first row of each episode.
  Episodes are delimited by these two only (rows of an episode are contiguous).
* ``pixels`` (N, H, W, 3) uint8 RGB (the reader also accepts (N, 3, H, W)); the recorded size,
  e.g. 224 x 224. Chunks of 100 rows, Blosc/LZ4 compressed through ``hdf5plugin`` (needed to read
  the published files; imported here when installed).
* ``action`` (N, A) float32 raw env actions: row t is the action applied after observing row t's
  pixels (the recorder moves the reset row's NaN action to the end), so the last row of each
  episode is NaN. A file whose episodes instead start with a NaN row and end with a finite one
  (action t = the action that led to row t) is shifted into that convention.
* optional ``proprio`` (N, P) and ``state`` (N, D) float vectors at row t (agent / full state);
  ``reward``, ``terminated``, ``truncated``, ``step_idx``, ``ep_idx``, ``id``, ``goal*``,
  ``variation.*`` columns are ignored. Nothing stores the control period: ``--dt`` gives it.

Output: the project's format (:mod:`lewm_training.dataset_format`): frames cropped and resized by
planner_node's camera room (:class:`lewm_ros.camera.CameraPipeline`), actions in the source's raw
units, ``state`` from ``--state-key`` (``auto``: ``state``, else ``proprio``, else none). Episodes
are read one at a time (pixels never load whole); shards are atomic and a re-run resumes.
Episodes of one row (no action) are skipped and counted.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from lewm_ros.camera import CameraPipeline, CropConfig
from lewm_ros.validation import check_int, check_positive, require
from lewm_training.dataset_format import (MANIFEST_NAME, POLICY_CODES, SHARD_GLOB, DatasetInfo,
                                          atomic_write_bytes, shard_name, write_shard_attributes)
from lewm_training.writer_cli import run_writer

log = logging.getLogger(__name__)

STATE_KEYS = ('auto', 'state', 'proprio', 'none')


class LayoutError(ValueError):
    """The source file is not in the stable-worldmodel HDF5 layout (names the dataset key)."""


@dataclass(frozen=True)
class ConvertConfig:
    """src: the stable-worldmodel ``.h5`` file; image_size: model input side S [px] (8..1024);
    crop: planner_node's crop_box / crop_scale applied before resizing; task: dataset task name
    ('' = the file stem); dt: time between rows [s] (> 0; the layout does not store it);
    state_key: one of :data:`STATE_KEYS`; episodes_per_shard: episodes per shard (>= 1)."""
    src: Path
    image_size: int = 64
    crop: CropConfig = field(default_factory=CropConfig)
    task: str = ''
    dt: float = 0.1
    state_key: str = 'auto'
    episodes_per_shard: int = 20

    def __post_init__(self) -> None:
        check_int('image_size', self.image_size, 8, 1024)
        check_positive('dt', self.dt)
        require(self.state_key in STATE_KEYS, 'state_key', self.state_key, ', '.join(STATE_KEYS))
        check_int('episodes_per_shard', self.episodes_per_shard, 1)


@dataclass(frozen=True)
class ConvertReport:
    """episodes / frames: in the dataset (resumed shards included); skipped: source episodes of
    fewer than 2 rows; action_min / action_max: (A,) [raw units]; elapsed_s / frames_per_s: this run."""
    episodes: int
    frames: int
    skipped: int
    action_min: tuple[float, ...]
    action_max: tuple[float, ...]
    elapsed_s: float
    frames_per_s: float

    def lines(self) -> list[str]:
        ranges = ', '.join(f'[{lo:.3g}, {hi:.3g}]' for lo, hi in zip(self.action_min, self.action_max))
        return [f'episodes: {self.episodes} ({self.frames} frames); {self.skipped} skipped (fewer than 2 rows)',
                f'action ranges per dimension [raw units]: {ranges}',
                f'wrote {self.frames_per_s:.0f} frames/s ({self.elapsed_s:.1f} s)']


class SwmFile:
    """An open stable-worldmodel HDF5 file, checked against the layout; episodes read one by one."""

    def __init__(self, path: Path, state_key: str) -> None:
        try:
            import hdf5plugin  # noqa: F401  (registers the Blosc filter of the published files)
        except ImportError:
            pass
        self.path = path
        try:
            self.file = h5py.File(path, 'r')
        except OSError as exc:
            raise LayoutError(f'{path}: not a readable HDF5 file ({exc})') from None
        try:
            self._check(state_key)
        except BaseException:
            self.file.close()
            raise

    def _dataset(self, key: str, ndims: tuple[int, ...]) -> h5py.Dataset:
        if key not in self.file or not isinstance(self.file[key], h5py.Dataset):
            raise LayoutError(f"{self.path}: not in the stable-worldmodel layout: dataset '{key}' is missing "
                              f'(the file has: {", ".join(sorted(self.file.keys())) or "nothing"})')
        ds = self.file[key]
        if ds.ndim not in ndims:
            raise LayoutError(f"{self.path}: dataset '{key}' has shape {ds.shape}; the layout has "
                              f'{" or ".join(str(n) for n in ndims)} dimensions')
        return ds

    def _check(self, state_key: str) -> None:
        self.lengths = self._dataset('ep_len', (1,))[:].astype(np.int64)
        self.offsets = self._dataset('ep_offset', (1,))[:].astype(np.int64)
        self.pixels = self._dataset('pixels', (4,))
        action = self._dataset('action', (1, 2))
        rows = self.pixels.shape[0]
        if len(self.lengths) != len(self.offsets) or len(self.lengths) == 0:
            raise LayoutError(f"{self.path}: 'ep_len' has {len(self.lengths)} episodes, 'ep_offset' "
                              f'{len(self.offsets)}; the layout has the same number, >= 1')
        if np.any(self.lengths < 0) or np.any(self.offsets < 0) or np.any(self.offsets + self.lengths > rows):
            raise LayoutError(f"{self.path}: 'ep_offset' + 'ep_len' point past the {rows} rows of 'pixels'")
        if self.pixels.shape[-1] == 3:
            self.channels_first = False
        elif self.pixels.shape[1] == 3:
            self.channels_first = True
        else:
            raise LayoutError(f"{self.path}: dataset 'pixels' has shape {self.pixels.shape}; the layout has "
                              '(N, H, W, 3) or (N, 3, H, W) RGB')
        if self.pixels.dtype != np.uint8:
            raise LayoutError(f"{self.path}: dataset 'pixels' is {self.pixels.dtype}; the layout has uint8")
        if action.shape[0] != rows:
            raise LayoutError(f"{self.path}: dataset 'action' has {action.shape[0]} rows, 'pixels' {rows}")
        self.actions = action[:].astype(np.float32).reshape(rows, -1)  # (N, A): small, read once
        self.state_key = self._state_key(state_key, rows)
        self.state = (self.file[self.state_key][:].astype(np.float32).reshape(rows, -1) if self.state_key
                      else np.zeros((rows, 0), np.float32))

    def _state_key(self, wanted: str, rows: int) -> str:
        if wanted == 'none':
            return ''
        if wanted == 'auto':
            found = [k for k in ('state', 'proprio') if k in self.file]
            if not found:
                return ''
            wanted = found[0]
        ds = self._dataset(wanted, (1, 2))
        if ds.shape[0] != rows:
            raise LayoutError(f"{self.path}: dataset '{wanted}' has {ds.shape[0]} rows, 'pixels' {rows}")
        return wanted

    @property
    def usable(self) -> np.ndarray:
        """Source episode indices with >= 2 rows (at least one action)."""
        return np.flatnonzero(self.lengths >= 2)

    def episode_actions(self, ep: int) -> np.ndarray:
        """(L, A) float32 actions of source episode ``ep``: row t applied after frame t, last row NaN."""
        a = self.actions[self.offsets[ep]:self.offsets[ep] + self.lengths[ep]].copy()
        if np.isnan(a[0]).all() and not np.isnan(a[-1]).any():  # action t led to frame t: shift
            a = np.roll(a, -1, axis=0)
        a[-1] = np.nan
        if np.isnan(a[:-1]).any():
            raise LayoutError(f"{self.path}: dataset 'action' has NaN inside episode {ep} (rows "
                              f'{self.offsets[ep]}..{self.offsets[ep] + self.lengths[ep] - 1})')
        return a

    def episode_frames(self, ep: int, camera: CameraPipeline) -> np.ndarray:
        """(L, S, S, 3) uint8 frames of source episode ``ep`` through the camera room."""
        try:
            raw = self.pixels[self.offsets[ep]:self.offsets[ep] + self.lengths[ep]]
        except OSError as exc:  # e.g. a compression filter h5py lacks
            raise LayoutError(f"{self.path}: cannot read dataset 'pixels' ({exc}); the published files are "
                              'Blosc-compressed: pip install hdf5plugin') from None
        if self.channels_first:
            raw = raw.transpose(0, 2, 3, 1)
        return np.stack([camera.from_rgb(np.ascontiguousarray(frame)) for frame in raw])

    def close(self) -> None:
        self.file.close()


def _dataset_info(config: ConvertConfig, src: SwmFile) -> DatasetInfo:
    usable = src.usable
    if len(usable) == 0:
        raise LayoutError(f"{src.path}: no episode has 2 or more rows ('ep_len')")
    acted = np.concatenate([src.episode_actions(int(ep))[:-1] for ep in usable])
    source = {'file': src.path.name, 'bytes': src.path.stat().st_size, 'layout': 'stable-worldmodel hdf5',
              'episodes_in_file': int(len(src.lengths)), 'rows': int(src.pixels.shape[0]),
              'state_key': src.state_key, 'crop_box': list(config.crop.box), 'crop_scale': config.crop.scale}
    return DatasetInfo(task=config.task or config.src.stem, image_size=config.image_size, dt=config.dt,
                       action_low=acted.min(axis=0), action_high=acted.max(axis=0), action_dim=acted.shape[1],
                       state_dim=src.state.shape[1], episodes=int(len(usable)),
                       steps=int(src.lengths[usable].max() - 1), episodes_per_shard=config.episodes_per_shard,
                       source=source)


def _prepare_output(out: Path, info: DatasetInfo) -> list[int]:
    """Create or check ``out``; the shard indices still to write."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(info.to_manifest()))
    path = out / MANIFEST_NAME
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != manifest:
            key = next(k for k in sorted(set(theirs) | set(manifest)) if theirs.get(k) != manifest.get(k))
            raise ValueError(f'{out} holds a dataset made with {key}={theirs.get(key)!r}; this conversion has '
                             f'{key}={manifest.get(key)!r}; use another --out or the original file and settings')
    else:
        atomic_write_bytes(path, json.dumps(manifest, indent=2).encode())
    for stale in out.glob('.*.tmp'):
        stale.unlink(missing_ok=True)
    return [k for k in range(info.num_shards) if not (out / shard_name(k)).exists()]


def _shard_bytes(info: DatasetInfo, src: SwmFile, episodes: np.ndarray, camera: CameraPipeline, bar) -> bytes:
    """One shard (format of :mod:`lewm_training.dataset_format`) as bytes, built in memory."""
    s = info.image_size
    buffer = io.BytesIO()
    with h5py.File(buffer, 'w', track_order=True) as f:
        total = int(src.lengths[episodes].sum())
        pixels = f.create_dataset('pixels', (total, s, s, 3), np.uint8, chunks=(1, s, s, 3), compression='gzip',
                                  compression_opts=4)
        starts, actions, states = [0], [], []
        for ep in episodes.tolist():
            frames = src.episode_frames(ep, camera)
            pixels[starts[-1]:starts[-1] + len(frames)] = frames
            actions.append(src.episode_actions(ep))
            states.append(src.state[src.offsets[ep]:src.offsets[ep] + src.lengths[ep]])
            starts.append(starts[-1] + len(frames))
            bar.update(len(frames))
        f['actions'] = np.concatenate(actions).astype(np.float32)
        f['state'] = np.concatenate(states).astype(np.float32)
        f['episode_starts'] = np.asarray(starts, np.int64)
        f['episode_ids'] = episodes.astype(np.int64)  # the source episode index
        f['episode_policy'] = np.full(len(episodes), POLICY_CODES['recorded'], np.uint8)
        write_shard_attributes(f, info, 'recorded')
    return buffer.getvalue()


def convert(config: ConvertConfig, out: Path, progress: bool = True) -> ConvertReport:
    """Convert (or resume converting) ``config.src`` into the dataset directory ``out``.
    LayoutError (a ValueError) naming the dataset key for a file not in the layout."""
    camera = CameraPipeline(config.image_size, config.crop)
    src = SwmFile(Path(config.src), config.state_key)
    try:
        info = _dataset_info(config, src)
        todo = _prepare_output(out, info)
        usable = src.usable
        per = config.episodes_per_shard
        if len(todo) < info.num_shards:
            log.info('%s: resuming, %d of %d shards present', out, info.num_shards - len(todo), info.num_shards)
        frames = int(sum(src.lengths[usable[k * per:(k + 1) * per]].sum() for k in todo))
        started = time.perf_counter()
        with tqdm(total=frames, unit='frame', desc='convert', disable=not progress, smoothing=0.1) as bar:
            for k in todo:
                data = _shard_bytes(info, src, usable[k * per:(k + 1) * per], camera, bar)
                atomic_write_bytes(out / shard_name(k), data)
        elapsed = time.perf_counter() - started
    finally:
        src.close()
    return _report(out, len(src.lengths) - len(usable), elapsed, frames)


def _report(out: Path, skipped: int, elapsed: float, frames_written: int) -> ConvertReport:
    actions, episodes = [], 0
    for path in sorted(out.glob(SHARD_GLOB)):
        with h5py.File(path, 'r') as f:
            actions.append(f['actions'][:])
            episodes += len(f['episode_ids'])
    every = np.concatenate(actions)
    acted = every[~np.isnan(every).any(axis=1)]
    return ConvertReport(episodes=episodes, frames=len(every), skipped=int(skipped),
                         action_min=tuple(acted.min(axis=0).tolist()), action_max=tuple(acted.max(axis=0).tolist()),
                         elapsed_s=elapsed, frames_per_s=frames_written / elapsed if elapsed > 0 else 0.0)


# ----- CLI ----------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ConvertConfig(src=Path('.'))
    parser.add_argument('src', type=Path, metavar='SRC.h5',
                        help="a stable-worldmodel HDF5 file (the authors' datasets)")
    parser.add_argument('--out', type=Path, required=True, help='dataset directory (created or resumed)')
    parser.add_argument('--image-size', type=int, default=d.image_size, help='model input side [px] (default: 64)')
    crop = parser.add_mutually_exclusive_group()
    crop.add_argument('--crop-box', type=int, nargs=4, metavar=('X', 'Y', 'W', 'H'),
                      help="planner_node's crop_box [px] (default: centred square)")
    crop.add_argument('--crop-scale', type=float, default=1.0, help="planner_node's crop_scale (default: 1.0)")
    parser.add_argument('--task', default='', help='task name recorded in the dataset (default: the file stem)')
    parser.add_argument('--dt', type=float, default=d.dt,
                        help='time between rows [s]; the layout does not store it (default: %(default)s)')
    parser.add_argument('--state-key', choices=STATE_KEYS, default=d.state_key,
                        help="per-frame state vector: 'state', 'proprio', none, or auto (state, else proprio)")
    parser.add_argument('--episodes-per-shard', type=int, default=d.episodes_per_shard,
                        help='episodes per shard file, the unit of resumption (default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def run(args: argparse.Namespace) -> int:
    def write() -> ConvertReport:
        crop = CropConfig(box=tuple(args.crop_box or ()), scale=1.0 if args.crop_box else args.crop_scale)
        config = ConvertConfig(src=args.src, image_size=args.image_size, crop=crop, task=args.task, dt=args.dt,
                               state_key=args.state_key, episodes_per_shard=args.episodes_per_shard)
        return convert(config, args.out, progress=not args.no_progress)
    return run_writer(write, args.out, log)  # a LayoutError is a ValueError
