"""How a model trained on a robot's recording is deployed: the topics, message types, command
mapping, camera crop and control rate that produced its training data (no ROS imports).

The bag importer (``lewm-train import-bag``) writes this record into the dataset manifest and
``lewm-train fit`` carries it into the model's ``lewm_meta.json`` (``extra['deployment']``).
planner_node takes every command and camera parameter left unset from it, so a model trained on
a recording publishes the recorded message type at the recorded rate with no command parameters
set; explicit parameters still override. Models from the simulator carry none.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lewm_ros.camera.crop import CropConfig
from lewm_ros.control.command_mapping import COMMAND_TYPES
from lewm_ros.model.metadata import METADATA_FILE, ModelMetadata
from lewm_ros.validation import check_choice, check_number, require

IMAGE_TYPES = ('raw', 'compressed')
#: Key of the record in ModelMetadata.extra (and in a dataset manifest).
DEPLOYMENT_KEY = 'deployment'


@dataclass(frozen=True)
class Deployment:
    """camera_topic / command_topic: the recorded topic names; image_type: 'raw' | 'compressed';
    command_type: planner_node's name of the recorded command message (one of COMMAND_TYPES);
    command_fields: per action dim, the Twist field or joint name it was read from (empty for
    float64_multi_array); command_scales: (A,) command units per action unit the importer divided
    by; control_rate_hz: the control period the recording was aligned to [Hz]; crop_box /
    crop_scale: the camera crop the frames were made with (see CropConfig)."""
    camera_topic: str
    image_type: str
    command_topic: str
    command_type: str
    command_fields: tuple[str, ...]
    command_scales: tuple[float, ...]
    control_rate_hz: float
    crop_box: tuple[int, ...] = ()
    crop_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ('camera_topic', 'command_topic'):
            require(isinstance(getattr(self, name), str) and bool(getattr(self, name)), f'deployment.{name}',
                    getattr(self, name), 'a topic name')
        check_choice('deployment.image_type', self.image_type, IMAGE_TYPES)
        check_choice('deployment.command_type', self.command_type, COMMAND_TYPES)
        require(all(isinstance(f, str) for f in self.command_fields), 'deployment.command_fields',
                self.command_fields, 'a list of field or joint names')
        require(len(self.command_scales) > 0, 'deployment.command_scales', self.command_scales,
                'one scale per action dim')
        for i, scale in enumerate(self.command_scales):
            check_number(f'deployment.command_scales[{i}]', scale, -100.0, 100.0)
        check_number('deployment.control_rate_hz', self.control_rate_hz, 0.1, 1000.0)
        CropConfig(box=tuple(self.crop_box), scale=self.crop_scale)  # raises naming crop_box / crop_scale

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'Deployment':
        """The record from its JSON form; ValueError naming the key for anything missing or wrong."""
        require(isinstance(data, dict), DEPLOYMENT_KEY, data, 'a mapping')
        fields = set(cls.__dataclass_fields__)
        unknown, missing = sorted(set(data) - fields), sorted(
            name for name in fields - set(data) if name not in ('crop_box', 'crop_scale'))
        require(not unknown and not missing, DEPLOYMENT_KEY, sorted(data),
                f'the keys {sorted(fields)} (unknown: {unknown}, missing: {missing})')
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        return cls(**values)

    @classmethod
    def of_model(cls, metadata: ModelMetadata) -> 'Deployment | None':
        """The model's recorded deployment, or None (a simulator model). ValueError names the file."""
        data = metadata.extra.get(DEPLOYMENT_KEY)
        if data is None:
            return None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{METADATA_FILE}: extra.{exc}') from None
