"""lewm_meta.json validation: every field checked (finite, positive, ordered, typed), checked
against config.json where a model directory is loaded, and every error names the file and the key."""
import json

import numpy as np
import pytest
import torch

from lewm_ros.model import CheckpointError, LeWM, ModelMetadata, load_metadata, load_model_dir, preset, \
    save_model_dir
from lewm_ros.model.metadata import METADATA_FILE


def _meta_dict(**changes):
    data = dict(format_version=1, action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0.1, -0.2],
                action_std=[0.5, 0.7], action_low=[-1.0, -1.0], action_high=[1.0, 1.0], task='tworoom',
                preset='compact', extra={})
    data.update(changes)
    return data


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    """A compact-preset model directory (image 64, block 10, history 3) with valid metadata."""
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp('model') / 'm'
    save_model_dir(LeWM(preset('compact')).eval(), directory,
                   ModelMetadata.from_dict(_meta_dict()))
    return directory


def _write(directory, text):
    (directory / METADATA_FILE).write_text(text)


@pytest.mark.parametrize('changes, key', [
    (dict(action_std=[float('nan'), 1.0]), r'action_std\[0\]'),
    (dict(action_mean=[0.0, float('inf')]), r'action_mean\[1\]'),
    (dict(action_low=[float('-inf'), -1.0]), r'action_low\[0\]'),
    (dict(action_high=[1.0, float('nan')]), r'action_high\[1\]'),
    (dict(action_std=[0.5, 0.0]), r'action_std\[1\]'),
    (dict(action_std=[-0.5, 1.0]), r'action_std\[0\]'),
    (dict(action_low=[2.0, -1.0]), r'action_low\[0\]'),
    (dict(action_dim='2'), 'action_dim'),
    (dict(frameskip=5.0), 'frameskip'),
    (dict(history=True), 'history'),
    (dict(image_size=100000), 'image_size'),
    (dict(image_size=0), 'image_size'),
    (dict(action_mean=['0.1', -0.2]), r'action_mean\[0\]'),
    (dict(action_std=[True, 1.0]), r'action_std\[0\]'),
    (dict(action_low=[-1.0]), 'action_low'),
    (dict(action_high=1.0), 'action_high'),
    (dict(task=3), 'task'),
    (dict(extra=[1]), 'extra'),
    (dict(format_version=2), 'format_version'),
    (dict(format_version='1'), 'format_version'),
])
def test_bad_field_names_the_file_and_the_key(model_dir, changes, key):
    _write(model_dir, json.dumps(_meta_dict(**changes)))  # json writes NaN / Infinity, as a tool might
    try:
        with pytest.raises(CheckpointError, match=rf'{METADATA_FILE}.*metadata\.{key}'):
            load_metadata(model_dir)
        with pytest.raises(ValueError, match=rf'metadata\.{key}'):
            ModelMetadata.from_dict(_meta_dict(**changes))
    finally:
        _write(model_dir, json.dumps(_meta_dict()))


def test_missing_and_unknown_keys_are_named(model_dir):
    data = _meta_dict()
    del data['action_std']
    _write(model_dir, json.dumps(data))
    with pytest.raises(CheckpointError, match=rf"{METADATA_FILE}.*missing key.*'action_std'"):
        load_metadata(model_dir)
    _write(model_dir, json.dumps(_meta_dict(action_stdev=[1.0, 1.0])))
    with pytest.raises(CheckpointError, match=rf"{METADATA_FILE}.*unknown key.*'action_stdev'"):
        load_metadata(model_dir)
    _write(model_dir, '[1, 2]')
    with pytest.raises(CheckpointError, match=METADATA_FILE):
        load_metadata(model_dir)
    _write(model_dir, json.dumps(_meta_dict()))


@pytest.mark.parametrize('changes, meta_key, config_key', [
    (dict(image_size=128), 'image_size=128', 'encoder.image_size=64'),
    (dict(frameskip=4), r'frameskip x action_dim=8', 'action_encoder.input_dim=10'),
    (dict(action_dim=5, frameskip=2, action_mean=[0.0] * 5, action_std=[1.0] * 5, action_low=[-1.0] * 5,
          action_high=[1.0] * 5), 'frameskip x action_dim=10', None),   # same block width: consistent
    (dict(history=2), 'history=2', 'predictor.num_frames=3'),
])
def test_metadata_must_agree_with_config(model_dir, changes, meta_key, config_key):
    _write(model_dir, json.dumps(_meta_dict(**changes)))
    try:
        if config_key is None:
            assert load_metadata(model_dir).block_dim == 10
            return
        pattern = rf'{METADATA_FILE} {meta_key} does not match .*config\.json {config_key}'
        with pytest.raises(CheckpointError, match=pattern):
            load_metadata(model_dir)
        with pytest.raises(CheckpointError, match=pattern):
            load_model_dir(model_dir)
    finally:
        _write(model_dir, json.dumps(_meta_dict()))


def test_valid_metadata_loads_with_numpy_and_int_entries(model_dir):
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64,
                         action_mean=list(np.array([0.1, -0.2], np.float32)), action_std=[1, 2],
                         action_low=np.array([-1.0, -1.0]).tolist(), action_high=[1, 1])
    assert meta.action_std == [1.0, 2.0] and all(type(v) is float for v in meta.action_mean)
    assert load_metadata(model_dir) == ModelMetadata.from_dict(_meta_dict())


def test_shipped_models_pass():
    from pathlib import Path
    for directory in sorted((Path(__file__).resolve().parents[2] / 'models').iterdir()):
        if (directory / METADATA_FILE).is_file():
            assert load_metadata(directory).image_size >= 1
