"""The episode dataset format (``format_version`` 1): names, layout and the record describing a dataset.

Writers (:mod:`lewm_training.collect`, :mod:`lewm_training.bag_import`) and readers
(:mod:`lewm_training.dataset`, :mod:`lewm_training.train_data`) import this module; it imports
no writer, task, policy or simulator.

A dataset is a directory:

* ``manifest.json``: :class:`DatasetInfo` as JSON (``DatasetInfo.to_manifest``); written
  atomically before any shard.
* ``shard_NNNNNN.h5`` (:func:`shard_name`): episodes ``[N * episodes_per_shard, (N + 1) *
  episodes_per_shard)`` (the last shard may hold fewer). A shard is written under a hidden
  temporary name and atomically renamed when complete, so every ``shard_*.h5`` present is
  complete and readable, and a crash loses at most the shards in progress. Datasets in a shard
  (frames of all its episodes concatenated, each episode ``steps + 1`` frames):

  - ``pixels``  (N, S, S, 3) uint8 RGB, chunks (1, S, S, 3), gzip level 4;
  - ``actions`` (N, A) float32 raw units: ``actions[t]`` is the action applied after observing
    ``pixels[t]``; the last frame of each episode has none (its row is NaN);
  - ``state``   (N, state_dim) float32 physical state at ``pixels[t]``;
  - ``episode_starts`` (E + 1,) int64 frame offsets of the episodes;
  - ``episode_ids`` (E,) int64 global episode indices;
  - ``episode_policy`` (E,) uint8: :data:`POLICY_CODES` (0 random walk, 1 heuristic, 2 recorded).

  Episodes of recorded data (``lewm-train import-bag``) vary in length: ``episode_starts`` says
  where each begins; ``state`` is then (N, 0).

  Shard attributes: ``manifest`` (the JSON text) and, for tools that read one file alone,
  ``format_version``, ``task``, ``image_size``, ``dt``, ``action_low``, ``action_high``,
  ``seed``, ``policy``, ``heuristic_frac``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.control.deployment import Deployment
from lewm_ros.jsonio import read_json
from lewm_ros.validation import check_int, check_positive, require

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
SHARD_GLOB = 'shard_*.h5'
POLICY_CODES = {'random': 0, 'heuristic': 1, 'recorded': 2}
"""``episode_policy`` code of each collection policy kind ('recorded': imported from a robot's bag)."""
"""Camera message kinds: sensor_msgs/Image ('raw') or sensor_msgs/CompressedImage ('compressed')."""

# Manifest keys in the order they are written (keeps manifests byte-identical to format 1's).
_MANIFEST_ORDER = ('format_version', 'task', 'task_kwargs', 'image_size', 'dt', 'action_low', 'action_high',
                   'action_dim', 'state_dim', 'seed', 'episodes', 'steps', 'episodes_per_shard', 'policy',
                   'deployment', 'source')


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` (a shard or the manifest) through a hidden temporary file, fsync'd and
    renamed: a reader sees the whole file or none of it, whatever interrupts the writer."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def shard_name(index: int) -> str:
    """File name of shard ``index`` (>= 0): ``shard_000042.h5``."""
    return f'shard_{index:06d}.h5'


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What a dataset holds and how it was made (the manifest); validated on construction.

    task: name of the task that produced the frames (a ``lewm_training.tasks`` name for
        simulated data; any name for recorded data).
    image_size: side S of the square frames [px], 8..1024.
    dt: time between two consecutive frames / raw actions [s], > 0.
    action_low / action_high: (A,) float64 bounds of the raw actions [raw units], low <= high.
    action_dim: A, the raw action width (= len(action_low)).
    state_dim: width of the per-frame ``state`` vector (>= 0).
    episodes: episodes the writer set out to write (>= 1; a partial dataset holds fewer).
    steps: raw actions per episode (>= 1); an episode has steps + 1 frames.
    episodes_per_shard: episodes per shard file, the unit of resumption (>= 1; None for data
        that lives in memory, e.g. the synthetic generator's).
    task_kwargs: extra task constructor arguments used by the writer ({} when none).
    seed: the writer's base seed (None when the data was not generated from one).
    policy: the collection policy settings (kind, heuristic_frac, hold_prob, smoothing, noise;
        see :class:`lewm_training.policies.PolicyConfig`), None when no policy drove the data.
    deployment: :class:`~lewm_ros.control.deployment.Deployment` of recorded data (topics,
        message types, command mapping, control rate, crop), None for simulated data;
        ``lewm-train fit`` copies it into the model's ``lewm_meta.json`` (``extra.deployment``).
        A manifest holds it as a JSON object.
    source: where recorded data came from and with which import settings (bags, message
        counts, alignment settings), None for simulated data; a re-run that resumes an import
        must match it.
    format_version: :data:`FORMAT_VERSION`.
    """

    task: str
    image_size: int
    dt: float
    action_low: np.ndarray
    action_high: np.ndarray
    action_dim: int
    state_dim: int
    episodes: int
    steps: int
    episodes_per_shard: int | None = None
    task_kwargs: dict = field(default_factory=dict)
    seed: int | None = None
    policy: dict | None = None
    deployment: Deployment | None = None
    source: dict | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        require(self.format_version == FORMAT_VERSION, 'format_version', self.format_version, str(FORMAT_VERSION))
        require(isinstance(self.task, str) and bool(self.task), 'task', self.task, 'a non-empty task name')
        check_int('image_size', self.image_size, 8, 1024)
        check_positive('dt', self.dt)
        low = np.asarray(self.action_low, np.float64)
        high = np.asarray(self.action_high, np.float64)
        object.__setattr__(self, 'action_low', low)
        object.__setattr__(self, 'action_high', high)
        check_int('action_dim', self.action_dim, 1)
        require(low.shape == high.shape == (self.action_dim,) and bool(np.all(low <= high)),
                'action_low', low.tolist(), f'{self.action_dim} values <= action_high {high.tolist()}')
        check_int('state_dim', self.state_dim, 0)
        check_int('episodes', self.episodes, 1)
        check_int('steps', self.steps, 1)
        if self.episodes_per_shard is not None:
            check_int('episodes_per_shard', self.episodes_per_shard, 1)
        if self.seed is not None:
            check_int('seed', self.seed, 0)
        if isinstance(self.deployment, dict):  # as a manifest holds it
            object.__setattr__(self, 'deployment', Deployment.from_dict(self.deployment))
        require(self.deployment is None or isinstance(self.deployment, Deployment), 'deployment',
                self.deployment, 'a Deployment record or None')
        if self.deployment is not None:
            require(len(self.deployment.command_scales) == self.action_dim, 'deployment.command_scales',
                    list(self.deployment.command_scales), f'action_dim={self.action_dim} values')
            require(self.deployment.image_size == self.image_size, 'deployment.image_size',
                    self.deployment.image_size, f'image_size={self.image_size}')
        require(self.source is None or isinstance(self.source, dict), 'source', self.source, 'a JSON object or None')

    @property
    def num_shards(self) -> int:
        """Shard files of the complete dataset (needs ``episodes_per_shard``)."""
        return -(-self.episodes // self.episodes_per_shard)

    def to_manifest(self) -> dict[str, Any]:
        """The manifest dict (JSON types, format-1 key order; keys whose value is None are left out)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values['action_low'] = self.action_low.tolist()
        values['action_high'] = self.action_high.tolist()
        values['task_kwargs'] = dict(self.task_kwargs)
        values['deployment'] = None if self.deployment is None else self.deployment.to_dict()
        return {key: values[key] for key in _MANIFEST_ORDER if values[key] is not None}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> DatasetInfo:
        """Parse a manifest dict (a bad value raises ValueError naming the field, an unknown key
        TypeError; :func:`read_manifest` reports either with the file)."""
        version = manifest.get('format_version')  # first: another version may have other keys
        require(version == FORMAT_VERSION, 'format_version', version, str(FORMAT_VERSION))
        return cls(**manifest)


def read_manifest(directory: str | Path) -> DatasetInfo:
    """The :class:`DatasetInfo` of the dataset directory ``directory``; ValueError naming the
    directory when it holds no manifest or an invalid one."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f'{directory} is not a collected dataset: {MANIFEST_NAME} is missing')
    return read_json(path, 'dataset manifest', DatasetInfo.from_manifest)


def write_shard_attributes(f, info: DatasetInfo, policy: str, with_seed: bool = False, **after: Any) -> None:
    """The shard attributes of the format on an open h5py file ``f`` (see the module docstring):
    the manifest JSON and, for tools that read one file alone, format_version, task, image_size,
    dt (and seed when ``with_seed``), the action bounds, ``policy`` and then ``after``."""
    manifest = info.to_manifest()
    f.attrs['manifest'] = json.dumps(manifest)
    for key in ('format_version', 'task', 'image_size', 'dt', *(('seed',) if with_seed else ())):
        f.attrs[key] = manifest[key]
    f.attrs['action_low'] = np.asarray(manifest['action_low'])
    f.attrs['action_high'] = np.asarray(manifest['action_high'])
    f.attrs['policy'] = policy
    for key, value in after.items():
        f.attrs[key] = value
