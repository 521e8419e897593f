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
from lewm_ros.model.metadata import MAX_IMAGE_SIZE, METADATA_FILE, ModelMetadata
from lewm_ros.validation import check_choice, check_int, check_number, require

IMAGE_TYPES = ('raw', 'compressed')
#: Key of the record in ModelMetadata.extra (and in a dataset manifest).
DEPLOYMENT_KEY = 'deployment'


@dataclass(frozen=True)
class Deployment:
    """Field names are planner_node's parameter names.

    camera_topic: the recorded camera topic (for image_type 'compressed' the full topic, e.g.
        ``/front/image_raw/compressed``); command_topic: the recorded command topic;
    image_type: 'raw' | 'compressed';
    command_type: planner_node's name of the recorded command message (one of COMMAND_TYPES);
    command_fields: per action dim, the Twist field or joint name it was read from (empty for
        float64_multi_array);
    command_scales: (A,) nonzero, command units per raw action unit (command = action x scale);
    control_rate: control ticks per second the recording was aligned to [Hz] (one raw action a tick);
    image_size: side of the model input the frames were resized to [px];
    crop_box / crop_scale: the camera crop the frames were made with (see CropConfig)."""
    camera_topic: str
    image_type: str
    command_topic: str
    command_type: str
    command_fields: tuple[str, ...]
    command_scales: tuple[float, ...]
    control_rate: float
    image_size: int
    crop_box: tuple[int, ...] = ()
    crop_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ('camera_topic', 'command_topic'):
            require(isinstance(getattr(self, name), str) and bool(getattr(self, name)), f'deployment.{name}',
                    getattr(self, name), 'a topic name')
        check_choice('deployment.image_type', self.image_type, IMAGE_TYPES)
        check_choice('deployment.command_type', self.command_type, COMMAND_TYPES)
        for name in ('command_fields', 'command_scales', 'crop_box'):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        require(all(isinstance(f, str) and f for f in self.command_fields), 'deployment.command_fields',
                list(self.command_fields), 'non-empty field or joint names')
        require(len(self.command_scales) > 0, 'deployment.command_scales', list(self.command_scales),
                'one scale per action dim')
        for i, scale in enumerate(self.command_scales):
            check_number(f'deployment.command_scales[{i}]', scale, -100.0, 100.0)
            require(scale != 0.0, f'deployment.command_scales[{i}]', scale, 'nonzero (the importer divides by it)')
        check_number('deployment.control_rate', self.control_rate, 0.1, 1000.0)
        check_int('deployment.image_size', self.image_size, 8, MAX_IMAGE_SIZE)
        try:
            CropConfig(box=self.crop_box, scale=self.crop_scale)
        except ValueError as exc:
            raise ValueError(f'deployment.{exc}') from None

    def to_dict(self) -> dict[str, Any]:
        """JSON types (tuples as lists), in field order."""
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
        return cls(**data)

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
