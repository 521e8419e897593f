"""Planned episodes of a bag -> one dataset shard (format: :mod:`lewm_training.dataset_format`).

A shard is written under a hidden temporary name and renamed when complete (every
``shard_*.h5`` present is complete). Pixels come from planner_node's camera room
(:class:`lewm_ros.camera.CameraPipeline`), so training sees the pixels the node will see. A frame
that cannot be decoded is counted and replaced by the newest earlier decodable frame no older
than ``max_gap`` before the tick (as the node keeps planning from its last good image); where
none exists the episode ends before that tick (dropped when shorter than ``min_steps``).
"""
from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import h5py
import numpy as np

from lewm_ros.camera import CameraPipeline
from lewm_training.bag_alignment import EpisodePlan
from lewm_training.bag_source import Bag
from lewm_training.dataset_format import POLICY_CODES, DatasetInfo, fsync_dir, write_shard_attributes

STATS_ATTR = 'import_stats'
"""Shard attribute (JSON) with the import counters of its episodes (summed by the summary)."""


@dataclass(frozen=True)
class PlannedEpisode:
    """episode: global index (the dataset's episode id); bag: index into the bag list;
    plan: ticks, frame indices and actions."""
    episode: int
    bag: int
    plan: EpisodePlan


class FrameSource:
    """Decoded, cropped, resized frames of one bag's camera stream, by frame index.

    frame_times: (F,) int64 [ns] the scan's camera times (message j of the stream is frame j).
    Episodes are asked for in time order: the bag is read forward once (restarted only when an
    episode needs a frame behind the read position)."""

    def __init__(self, bag: Bag, frame_times: np.ndarray, camera: CameraPipeline, max_gap_ns: int) -> None:
        self.bag, self.frame_times, self.camera, self.max_gap_ns = bag, frame_times, camera, max_gap_ns
        self.undecodable: dict[str, int] = {}
        self._stream = None
        self._position = 0  # frame index the stream yields next

    def frames(self, plan: EpisodePlan) -> tuple[list[np.ndarray], set[int]]:
        """(images (S, S, 3) uint8 of the plan's ticks, in order, cut before the first tick with no
        usable frame; indices of the camera frames used)."""
        needed = set(plan.frames.tolist())
        first = int(np.searchsorted(self.frame_times, int(plan.ticks[0]) - self.max_gap_ns, side='left'))
        last = int(plan.frames.max())
        if self._stream is None or first < self._position:
            self._stream, self._position = self.bag.camera_stream(int(self.frame_times[first])), first
        decoded: dict[int, np.ndarray | None] = {}
        fallback: dict[int, int] = {}  # failed frame -> newest earlier decodable frame
        recent: deque = deque()  # (index, time, bytes) within max_gap of the newest
        while self._position <= last:
            j = self._position
            t, raw = next(self._stream, (None, None))
            self._position += 1
            if t != self.frame_times[j]:
                raise RuntimeError(f'{self.bag.path}: camera messages changed between two reads (frame {j})')
            if j < first:
                continue
            recent.append((j, t, raw))
            while recent[0][1] < t - self.max_gap_ns:
                recent.popleft()
            if j in needed and self._decode(j, raw, decoded) is None:
                for k, _tk, older in reversed(list(recent)[:-1]):
                    if self._decode(k, older, decoded) is not None:
                        fallback[j] = k
                        break
        images, used = [], set()
        for tick, j in zip(plan.ticks.tolist(), plan.frames.tolist()):
            k = j if decoded.get(j) is not None else fallback.get(j)
            if k is None or tick - int(self.frame_times[k]) > self.max_gap_ns:
                break
            images.append(decoded[k])
            used.add(k)
        return images, used

    def _decode(self, j: int, raw: bytes, cache: dict[int, np.ndarray | None]) -> np.ndarray | None:
        if j not in cache:
            try:
                msg = self.bag.camera_message(raw)
                if msg is None:
                    raise ValueError('message bytes are not a camera message')
                cache[j] = self.camera.from_message(msg)
            except (ValueError, AttributeError, TypeError) as exc:  # ImageDecodeError is a ValueError
                reason = str(exc).split(':')[0][:80]
                self.undecodable[reason] = self.undecodable.get(reason, 0) + 1
                cache[j] = None
        return cache[j]


def write_shard(out: Path, name: str, info: DatasetInfo, episodes: list[PlannedEpisode],
                sources: list[FrameSource], min_steps: int, progress: Callable[[int], None] | None = None) -> dict:
    """Write the shard ``name`` into ``out`` atomically; returns its import counters."""
    final = out / name
    tmp = out / f'.{name}.{os.getpid()}.tmp'
    try:
        stats = _write(tmp, info, episodes, sources, min_steps, progress)
        with open(tmp, 'rb') as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    fsync_dir(out)
    return stats


def _write(tmp: Path, info: DatasetInfo, episodes: list[PlannedEpisode], sources: list[FrameSource],
           min_steps: int, progress: Callable[[int], None] | None) -> dict:
    s, a = info.image_size, info.action_dim
    before = [dict(src.undecodable) for src in sources]
    starts, ids, actions, used_frames = [0], [], [], 0
    truncated = dropped = 0
    with h5py.File(tmp, 'w', track_order=True) as f:
        pixels = f.create_dataset('pixels', (0, s, s, 3), np.uint8, maxshape=(None, s, s, 3), chunks=(1, s, s, 3),
                                  compression='gzip', compression_opts=4)
        for item in episodes:
            images, used = sources[item.bag].frames(item.plan)
            if progress is not None:
                progress(len(item.plan.ticks))
            if len(images) < len(item.plan.ticks):
                truncated += 1
                if len(images) - 1 < min_steps:
                    dropped += 1
                    continue
            n = len(images)
            pixels.resize(starts[-1] + n, axis=0)
            pixels[starts[-1]:starts[-1] + n] = np.stack(images)
            ep_actions = item.plan.actions[:n].astype(np.float32)
            ep_actions[-1] = np.nan  # the last frame of an episode has no action
            actions.append(ep_actions)
            starts.append(starts[-1] + n)
            ids.append(item.episode)
            used_frames += len(used)
        total = starts[-1]
        f.create_dataset('actions', data=np.concatenate(actions) if actions else np.zeros((0, a), np.float32))
        f.create_dataset('state', (total, info.state_dim), np.float32)
        f['episode_starts'] = np.asarray(starts, np.int64)
        f['episode_ids'] = np.asarray(ids, np.int64)
        f['episode_policy'] = np.full(len(ids), POLICY_CODES['recorded'], np.uint8)
        write_shard_attributes(f, info, 'recorded')
        undecodable = {}
        for src, old in zip(sources, before):
            for reason, count in src.undecodable.items():
                undecodable[reason] = undecodable.get(reason, 0) + count - old.get(reason, 0)
        stats = {'camera_frames_used': used_frames, 'undecodable': {k: v for k, v in undecodable.items() if v},
                 'truncated_episodes': truncated, 'dropped_undecodable_episodes': dropped}
        f.attrs[STATS_ATTR] = json.dumps(stats)
    return stats
