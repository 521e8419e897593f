"""dataset_format: the one record describing a dataset, its manifest and the reader's imports."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lewm_training.dataset_format import FORMAT_VERSION, MANIFEST_NAME, DatasetInfo, read_manifest, shard_name

# A format-1 manifest as ``lewm-train collect`` writes it (key order included).
MANIFEST = {
    'format_version': 1, 'task': 'tworoom', 'task_kwargs': {}, 'image_size': 16, 'dt': 0.1,
    'action_low': [-1.0, -1.0], 'action_high': [1.0, 1.0], 'action_dim': 2, 'state_dim': 4, 'seed': 0,
    'episodes': 3, 'steps': 5, 'episodes_per_shard': 2,
    'policy': {'kind': 'mix', 'heuristic_frac': 0.5, 'hold_prob': 0.8, 'smoothing': 0.5, 'noise': 0.3},
}


def test_manifest_round_trip_keeps_bytes(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(MANIFEST, indent=2))
    info = read_manifest(tmp_path)
    assert info.num_shards == 2 and info.action_low.dtype == np.float64
    assert json.dumps(info.to_manifest(), indent=2) == json.dumps(MANIFEST, indent=2)
    assert shard_name(7) == 'shard_000007.h5' and FORMAT_VERSION == 1


def test_writer_without_seed_policy_or_shards_omits_them():
    info = DatasetInfo(task='bag', image_size=64, dt=0.05, action_low=(-1.0,), action_high=(1.0,), action_dim=1,
                       state_dim=0, episodes=1, steps=10)
    assert set(info.to_manifest()) == set(MANIFEST) - {'seed', 'episodes_per_shard', 'policy'}


@pytest.mark.parametrize('field, value', [
    ('format_version', 2), ('image_size', 4), ('dt', 0.0), ('action_dim', 0), ('steps', 0),
    ('episodes_per_shard', 0), ('seed', -1),
])
def test_bad_manifest_names_the_field(tmp_path, field, value):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({**MANIFEST, field: value}))
    with pytest.raises(ValueError, match=f'{field}={value!r} is out of range'):
        read_manifest(tmp_path)


def test_missing_manifest(tmp_path):
    with pytest.raises(ValueError, match='is not a collected dataset'):
        read_manifest(tmp_path)


def test_reading_imports_no_writer_and_no_simulator():
    code = ('import sys, lewm_training.dataset, lewm_training.train_data; '
            "print(sorted(m for m in ('lewm_training.collect', 'lewm_training.policies', 'lewm_training.tasks', "
            "'mujoco') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
