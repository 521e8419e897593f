"""Read episode datasets (format in :mod:`lewm_training.dataset_format`, written by ``lewm-train collect``).

* :func:`open_dataset` -> :class:`EpisodeDataset`: episodes of the complete
  shards present (works while a collection is still running or after a crash).
* :class:`WindowDataset`: torch Dataset of training windows (frames every
  ``frameskip`` env steps, with their action blocks).
* :func:`split_episodes`, :func:`action_stats`.

Memory: by default every array is decompressed into RAM when the pixels fit in
``max_ram_bytes`` (default 4 GiB; 2000 episodes x 101 frames x 64x64x3 is
2.5 GB): random access is then a numpy slice (~10 us per window) and DataLoader
workers started by fork share the pages copy-on-write. Larger datasets (e.g.
224 px) stay on disk: pixels are read per window from the HDF5 shards through
file handles cached per process (reopened after fork, since h5py handles must
not cross processes); actions/state (small) are always in RAM.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch

from lewm_ros.validation import check_int, check_number
from lewm_training.dataset_format import SHARD_GLOB, read_manifest

DEFAULT_MAX_RAM_BYTES = 4 << 30


class _Shard(NamedTuple):
    path: Path
    first_frame: int  # offset of the shard's frame 0 in the dataset's frame axis
    num_frames: int


class EpisodeDataset:
    """The complete episodes of a collected dataset.

    Episodes are addressed by position ``ep`` in [0, num_episodes), ordered by
    global episode id (``episode_ids[ep]``; ids may have gaps in a partial
    dataset). Frames of episode ``ep`` are [0, lengths[ep]).

    Attributes:
        metadata: :class:`~lewm_training.dataset_format.DatasetInfo` (the manifest).
        episode_ids: (E,) int64 global episode indices.
        lengths: (E,) int64 frames per episode (steps + 1).
        policy: (E,) uint8 0 random walk, 1 heuristic.
        actions: (N, A) float32 all frames (NaN on each episode's last frame).
        state: (N, state_dim) float32 all frames.
        in_memory: whether pixels were loaded into RAM.
    """

    def __init__(self, path: str | os.PathLike, in_memory: bool | None = None,
                 max_ram_bytes: int = DEFAULT_MAX_RAM_BYTES) -> None:
        self.path = Path(path)
        self.metadata = read_manifest(self.path)
        shards, ids, starts, policy, actions, state = [], [], [], [], [], []
        first = 0
        for shard_path in sorted(self.path.glob(SHARD_GLOB)):
            with h5py.File(shard_path, 'r') as f:
                num = f['pixels'].shape[0]
                shards.append(_Shard(shard_path, first, num))
                ids.append(f['episode_ids'][:])
                starts.append(f['episode_starts'][:-1] + first)
                policy.append(f['episode_policy'][:])
                actions.append(f['actions'][:])
                state.append(f['state'][:])
            first += num
        self._shards = shards
        self._shard_firsts = np.array([s.first_frame for s in shards], np.int64)
        a, sd = self.metadata.action_dim, self.metadata.state_dim
        self.episode_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.lengths = np.diff(np.append(self.starts, first)).astype(np.int64)
        self.policy = np.concatenate(policy) if policy else np.zeros(0, np.uint8)
        self.actions = np.concatenate(actions) if actions else np.zeros((0, a), np.float32)
        self.state = np.concatenate(state) if state else np.zeros((0, sd), np.float32)
        if np.any(np.diff(self.episode_ids) <= 0):
            raise ValueError(f'{self.path}: shards hold episodes out of order')
        s = self.metadata.image_size
        pixel_bytes = first * s * s * 3
        self.in_memory = pixel_bytes <= max_ram_bytes if in_memory is None else bool(in_memory)
        self._pixels: np.ndarray | None = None
        if self.in_memory:
            self._pixels = np.empty((first, s, s, 3), np.uint8)
            for shard in shards:
                with h5py.File(shard.path, 'r') as f:
                    f['pixels'].read_direct(self._pixels, dest_sel=np.s_[shard.first_frame:
                                                                         shard.first_frame + shard.num_frames])
        self._handles: dict[Path, h5py.File] = {}
        self._handles_pid = os.getpid()

    @property
    def num_episodes(self) -> int:
        return int(len(self.episode_ids))

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def __len__(self) -> int:
        return self.num_episodes

    def pixels(self, ep: int, frames: np.ndarray | slice | None = None) -> np.ndarray:
        """Pixels (F, S, S, 3) uint8 of episode ``ep`` (all frames, a slice or an index array)."""
        index = self._episode_frames(ep, frames)
        if self._pixels is not None:
            return self._pixels[index]
        return self._read_pixels(index)

    def episode_actions(self, ep: int) -> np.ndarray:
        """(L, A) float32 actions of episode ``ep`` (last row NaN)."""
        return self.actions[self.starts[ep]:self.starts[ep] + self.lengths[ep]]

    def episode_state(self, ep: int) -> np.ndarray:
        """(L, state_dim) float32 states of episode ``ep``."""
        return self.state[self.starts[ep]:self.starts[ep] + self.lengths[ep]]

    def _episode_frames(self, ep: int, frames: np.ndarray | slice | None) -> np.ndarray:
        local = np.arange(self.lengths[ep])
        local = local if frames is None else local[frames]
        return np.atleast_1d(self.starts[ep] + local)

    def _read_pixels(self, index: np.ndarray) -> np.ndarray:
        """Read dataset-wide frames ``index`` (sorted, one shard per episode) from disk."""
        if self._handles_pid != os.getpid():  # forked: never reuse the parent's handles
            self._handles, self._handles_pid = {}, os.getpid()
        shard = self._shards[int(np.searchsorted(self._shard_firsts, index[0], side='right')) - 1]
        handle = self._handles.get(shard.path)
        if handle is None:
            handle = self._handles[shard.path] = h5py.File(shard.path, 'r')
        # One read per frame: much faster in h5py than a fancy-index or strided read.
        pixels = handle['pixels']
        return np.stack([pixels[int(i)] for i in index - shard.first_frame])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_handles'] = {}
        return state


def open_dataset(path: str | os.PathLike, in_memory: bool | None = None,
                 max_ram_bytes: int = DEFAULT_MAX_RAM_BYTES) -> EpisodeDataset:
    """Open a collected dataset directory (complete shards only); see :class:`EpisodeDataset`."""
    return EpisodeDataset(path, in_memory=in_memory, max_ram_bytes=max_ram_bytes)


class Window(NamedTuple):
    """One training window of T = history + num_preds frames (collates into a batch).

    pixels: (T, S, S, 3) uint8 frames t0, t0 + k, ..., t0 + (T-1) k (k = frameskip).
    actions: (T, k * A) float32 raw units: block i = the k raw actions applied
        after frame i, concatenated in time order.
    state: (T, state_dim) float32.
    episode: position of the episode in the dataset; start: t0 (frame in the episode).
    """

    pixels: torch.Tensor
    actions: torch.Tensor
    state: torch.Tensor
    episode: int
    start: int


def check_window_settings(history: int, num_preds: int, frameskip: int) -> None:
    """Window settings of any window dataset: history / num_preds [frames] and frameskip [raw
    steps per frame], each an integer >= 1 (ValueError naming the field otherwise)."""
    for name, value in (('history', history), ('num_preds', num_preds), ('frameskip', frameskip)):
        check_int(name, value, 1)


class WindowDataset(torch.utils.data.Dataset):
    """All windows (every start frame) inside the chosen episodes, never crossing one.

    A window starting at t0 needs frames up to t0 + (T-1) k and actions up to
    t0 + T k - 1; an episode of L frames has L - 1 actions, so it yields
    max(0, L - T k) windows.
    """

    def __init__(self, dataset: EpisodeDataset, history: int = 3, num_preds: int = 1,
                 frameskip: int = 5, episodes: np.ndarray | list[int] | None = None) -> None:
        check_window_settings(history, num_preds, frameskip)
        self.dataset = dataset
        self.history, self.num_preds, self.frameskip = int(history), int(num_preds), int(frameskip)
        self.num_frames = self.history + self.num_preds
        eps = np.arange(dataset.num_episodes) if episodes is None else np.asarray(episodes, np.int64)
        if eps.size and (eps.min() < 0 or eps.max() >= dataset.num_episodes):
            raise ValueError(f'episodes must be in [0, {dataset.num_episodes}); got min {eps.min()}, '
                             f'max {eps.max()}')
        per_episode = np.maximum(0, dataset.lengths[eps] - self.num_frames * self.frameskip)
        self.episodes = eps
        self._window_episode = np.repeat(eps, per_episode)
        self._window_start = np.concatenate(
            [np.arange(n) for n in per_episode]) if eps.size else np.zeros(0, np.int64)
        self._frame_offsets = np.arange(self.num_frames) * self.frameskip

    def __len__(self) -> int:
        return int(len(self._window_episode))

    def __getitem__(self, index: int) -> Window:
        ep = int(self._window_episode[index])
        t0 = int(self._window_start[index])
        ds = self.dataset
        first = ds.starts[ep] + t0
        pixels = ds.pixels(ep, t0 + self._frame_offsets)
        actions = ds.actions[first:first + self.num_frames * self.frameskip]
        actions = actions.reshape(self.num_frames, self.frameskip * ds.metadata.action_dim)
        state = ds.state[first + self._frame_offsets]
        return Window(torch.from_numpy(np.ascontiguousarray(pixels)), torch.from_numpy(actions.copy()),
                      torch.from_numpy(state), ep, t0)


def split_episodes(n_episodes: int, val_frac: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random split of episode positions: (train_ids, val_ids), each sorted int64.

    At least one validation episode when ``val_frac > 0`` and n_episodes >= 2.
    """
    check_int('n_episodes', n_episodes, 0)
    check_number('val_frac', val_frac, 0.0, 1.0, exclusive_maximum=True)
    perm = np.random.default_rng(seed).permutation(n_episodes)
    n_val = int(round(val_frac * n_episodes))
    if val_frac > 0 and n_episodes >= 2:
        n_val = max(1, n_val)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def action_stats(dataset: EpisodeDataset, episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per raw action dimension (mean, std), float32 (A,), over the actions of ``episodes``
    (default all), NaN rows (episode ends) excluded; std floored at 1e-6."""
    if episodes is None:
        actions = dataset.actions
    else:
        actions = np.concatenate([dataset.episode_actions(int(ep)) for ep in episodes]
                                 or [np.zeros((0, dataset.metadata.action_dim), np.float32)])
    actions = actions[~np.isnan(actions).any(axis=1)].astype(np.float64)
    if len(actions) == 0:
        raise ValueError('action_stats: the dataset holds no actions')
    mean = actions.mean(axis=0)
    std = np.maximum(actions.std(axis=0), 1e-6)
    return mean.astype(np.float32), std.astype(np.float32)
