"""What inference needs besides the weights, shipped with every model (``lewm_meta.json``).

The reference recomputes action normalisation from its dataset; a robot has no dataset, so
the statistics, image size, frameskip, history and action bounds travel with the model.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.jsonio import check_known_keys, read_json, write_json
from lewm_ros.validation import check_ints, require

METADATA_FILE = 'lewm_meta.json'
FORMAT_VERSION = 1


@dataclass
class ModelMetadata:
    """action_dim: raw action width A; frameskip: raw actions per block; history: frames the
    predictor sees; image_size: model input side [px]; action_mean / action_std: per raw action
    dimension (A,) [raw units], blocks are z-scored as (a - mean) / std per dimension;
    action_low / action_high: (A,) hard bounds [raw units]; task, preset: free text;
    extra: anything else (training command, data size, metrics)."""
    action_dim: int
    frameskip: int
    history: int
    image_size: int
    action_mean: list[float]
    action_std: list[float]
    action_low: list[float]
    action_high: list[float]
    task: str = ''
    preset: str = ''
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ints('metadata.', self, ('action_dim', 'frameskip', 'history', 'image_size'), 1)
        for name in ('action_mean', 'action_std', 'action_low', 'action_high'):
            value = [float(v) for v in getattr(self, name)]
            require(len(value) == self.action_dim, f'metadata.{name}', value,
                    f'a list of action_dim={self.action_dim} numbers')
            setattr(self, name, value)
        require(min(self.action_std) > 0, 'metadata.action_std', self.action_std, 'entries > 0')
        require(all(lo <= hi for lo, hi in zip(self.action_low, self.action_high)), 'metadata.action_low',
                self.action_low, f'entries <= metadata.action_high {self.action_high}')

    @property
    def block_dim(self) -> int:
        """Width of one action block: frameskip x action_dim."""
        return self.frameskip * self.action_dim

    def normalize_blocks(self, raw: np.ndarray) -> np.ndarray:
        """raw actions (..., frameskip, A) or blocks (..., frameskip*A) -> z-scored blocks (..., frameskip*A)."""
        raw = np.asarray(raw, dtype=np.float32)
        shaped = raw.reshape(*raw.shape[:-1], -1, self.action_dim) if raw.shape[-1] == self.block_dim else raw
        z = (shaped - np.asarray(self.action_mean, np.float32)) / np.asarray(self.action_std, np.float32)
        return z.reshape(*z.shape[:-2], self.block_dim)

    def denormalize_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """z-scored blocks (..., frameskip*A) -> raw actions (..., frameskip, A)."""
        z = np.asarray(blocks, dtype=np.float64).reshape(*np.shape(blocks)[:-1], self.frameskip, self.action_dim)
        return z * np.asarray(self.action_std) + np.asarray(self.action_mean)

    def to_dict(self) -> dict[str, Any]:
        return {'format_version': FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'ModelMetadata':
        data = dict(data)
        version = data.pop('format_version', FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f'metadata format_version {version} is newer than supported ({FORMAT_VERSION})')
        check_known_keys('metadata', data, cls)
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        return write_json(Path(directory) / METADATA_FILE, self.to_dict())

    @classmethod
    def load(cls, directory: str | Path) -> 'ModelMetadata':
        return read_json(Path(directory) / METADATA_FILE, 'model metadata', cls.from_dict)
