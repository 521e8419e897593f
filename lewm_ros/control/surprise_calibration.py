"""The surprise score's normal distribution, shipped with the model (no ROS, no torch).

``lewm-train surprise --calibrate`` measures the surprise of normal closed-loop transitions
(the score of :meth:`lewm_ros.planning.MPCPlanner.observe`: ||predicted - observed latent||^2
summed over D [latent units^2]) and writes their quantiles into the model directory as
``surprise_calibration.json``. planner_node reports the score in calibrated units: the score
divided by the reference quantile (1.0 = the reference quantile of normal transitions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lewm_ros.jsonio import JsonRecord, check_known_keys
from lewm_ros.validation import check_int, check_number, check_positive, require

CALIBRATION_FILE = 'surprise_calibration.json'
FORMAT_VERSION = 1
#: Quantile levels a calibration records.
QUANTILE_LEVELS = (0.5, 0.9, 0.95, 0.99, 0.999)
#: The quantile that is one calibrated unit.
REFERENCE_LEVEL = 0.99


@dataclass(frozen=True)
class SurpriseCalibration(JsonRecord):
    """quantiles: level (as text, e.g. '0.99') -> score [latent units^2] of normal transitions,
    non-decreasing in the level, > 0; reference_level: the level that is one calibrated unit
    (one of the quantiles' levels); samples: transitions measured; source: how they were made
    (the command); model_hash: hex sha256 of the world model it was measured on
    (:func:`lewm_ros.runtime.onnx_manifest.model_hash`; '' = not bound to one); format_version:
    FORMAT_VERSION."""
    quantiles: dict[str, float]
    samples: int
    source: str = ''
    model_hash: str = ''
    reference_level: float = REFERENCE_LEVEL
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    FILE_NAME: ClassVar[str] = CALIBRATION_FILE
    DESCRIPTION: ClassVar[str] = 'surprise calibration'

    def __post_init__(self) -> None:
        require(self.format_version == FORMAT_VERSION, 'format_version', self.format_version, f'{FORMAT_VERSION}')
        require(isinstance(self.quantiles, dict) and bool(self.quantiles), 'quantiles', self.quantiles,
                'a mapping of quantile level -> score')
        levels = []
        for key, value in self.quantiles.items():
            try:
                level = float(key)
            except (TypeError, ValueError):
                raise ValueError(f'quantiles: key {key!r} is not a quantile level') from None
            check_number(f'quantiles[{key}] level', level, 0.0, 1.0)
            check_positive(f'quantiles[{key}]', value)
            levels.append((level, float(value)))
        levels.sort()
        require(all(a[1] <= b[1] for a, b in zip(levels, levels[1:])), 'quantiles', self.quantiles,
                'scores non-decreasing in the level')
        require(any(math.isclose(level, self.reference_level) for level, _ in levels), 'reference_level',
                self.reference_level, f'one of the quantile levels {[level for level, _ in levels]}')
        check_int('samples', self.samples, 1)
        require(isinstance(self.source, str), 'source', self.source, 'text')
        require(isinstance(self.model_hash, str), 'model_hash', self.model_hash, 'a hex sha256 or empty')

    @property
    def reference(self) -> float:
        """The score [latent units^2] that is one calibrated unit."""
        return next(float(v) for k, v in self.quantiles.items() if math.isclose(float(k), self.reference_level))

    def to_dict(self) -> dict[str, Any]:
        return {'format_version': self.format_version, 'reference_level': self.reference_level,
                'quantiles': dict(self.quantiles), 'samples': self.samples, 'source': self.source,
                'model_hash': self.model_hash, 'extra': dict(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurpriseCalibration:
        require(isinstance(data, dict), CALIBRATION_FILE, data, 'a JSON object')
        check_known_keys(CALIBRATION_FILE, data, cls)
        return cls(**data)

    @classmethod
    def from_scores(cls, scores, source: str, extra: dict[str, Any] | None = None,
                    model_hash: str = '') -> SurpriseCalibration:
        """The calibration of normal scores (a sequence of finite floats > 0 [latent units^2]) of
        the world model with hash ``model_hash``."""
        import numpy as np
        values = np.asarray(scores, np.float64).ravel()
        require(len(values) > 0 and bool(np.all(np.isfinite(values))), 'scores', f'{len(values)} values',
                'at least one, all finite')
        quantiles = {f'{level:g}': float(np.quantile(values, level)) for level in QUANTILE_LEVELS}
        return cls(quantiles=quantiles, samples=len(values), source=source, model_hash=model_hash,
                   extra=dict(extra or {}))


def load_calibration(model_dir: str | Path) -> SurpriseCalibration | None:
    """The model's calibration, or None when it ships none; ValueError naming the file when the
    file is there but invalid, or was measured on other weights (a model retrained in place keeps
    a calibration whose scale no longer holds: never silently used)."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    calibration = SurpriseCalibration.load(model_dir)
    if calibration.model_hash:
        from lewm_ros.runtime.onnx_manifest import model_hash
        actual = model_hash(model_dir)
        require(calibration.model_hash == actual, f'{path}: model_hash', calibration.model_hash,
                f'the model in {model_dir} ({actual}): re-run lewm-train surprise --calibrate')
    return calibration
