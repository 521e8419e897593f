"""What inference needs besides the weights, shipped with every model (``lewm_meta.json``).

The reference recomputes action normalisation from its dataset; a robot has no dataset, so
the statistics, image size, frameskip, history and action bounds travel with the model.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lewm_ros.jsonio import JsonRecord, check_known_keys
from lewm_ros.validation import check_int, check_ints, check_number, check_positive, require

METADATA_FILE = 'lewm_meta.json'
FORMAT_VERSION = 1
#: Largest accepted ``image_size`` [px]: the camera room resizes every frame to it (the paper uses 224).
MAX_IMAGE_SIZE = 1024


def _finite_vector(name: str, value: Any, length: int) -> list[float]:
    """``value`` as a list of ``length`` finite floats; ValueError naming ``name`` (or
    ``name[i]``) otherwise. JSON numbers only: strings, booleans, NaN and inf are refused."""
    require(isinstance(value, (list, tuple)) and len(value) == length, name, value,
            f'a list of action_dim={length} numbers')
    items = [float(item) if isinstance(item, numbers.Real) and not isinstance(item, (bool, np.bool_)) else item
             for item in value]  # numpy scalars count as numbers
    for i, item in enumerate(items):
        check_number(f'{name}[{i}]', item)
    return items


@dataclass
class ModelMetadata(JsonRecord):
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
    FILE_NAME: ClassVar[str] = METADATA_FILE
    DESCRIPTION: ClassVar[str] = 'model metadata'

    def __post_init__(self) -> None:
        check_ints('metadata.', self, ('action_dim', 'frameskip', 'history', 'image_size'), 1)
        check_int('metadata.image_size', self.image_size, 1, MAX_IMAGE_SIZE)
        for name in ('action_mean', 'action_std', 'action_low', 'action_high'):
            setattr(self, name, _finite_vector(f'metadata.{name}', getattr(self, name), self.action_dim))
        for i, std in enumerate(self.action_std):
            check_positive(f'metadata.action_std[{i}]', std)
        for i, (low, high) in enumerate(zip(self.action_low, self.action_high)):
            require(low <= high, f'metadata.action_low[{i}]', low, f'<= metadata.action_high[{i}]={high!r}')
        require(isinstance(self.task, str), 'metadata.task', self.task, 'a string')
        require(isinstance(self.preset, str), 'metadata.preset', self.preset, 'a string')
        require(isinstance(self.extra, dict), 'metadata.extra', self.extra, 'a JSON object')

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
        """Parse the JSON object of ``lewm_meta.json``; ValueError naming the key otherwise."""
        require(isinstance(data, dict), 'metadata', data, 'a JSON object')
        data = dict(data)
        version = data.pop('format_version', FORMAT_VERSION)
        check_int('metadata.format_version', version, 1, FORMAT_VERSION)
        missing = sorted({f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                          and f.default_factory is dataclasses.MISSING} - set(data))
        if missing:
            raise ValueError(f'metadata is missing key(s) {missing}')
        check_known_keys('metadata', data, cls)
        return cls(**data)

