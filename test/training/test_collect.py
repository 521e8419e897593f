"""``lewm-train collect``: real subprocesses, real HDF5 files, a real SIGKILL."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm_training.collect import CollectConfig, collect
from lewm_training.dataset import open_dataset
from lewm_training.policies import PolicyConfig

EPISODES, STEPS, SIZE = 24, 40, 16


def _cli(out: Path, episodes_per_shard: int) -> list[str]:
    return [sys.executable, '-m', 'lewm_training.cli', 'collect', '--task', 'tworoom',
            '--episodes', str(EPISODES), '--steps', str(STEPS), '--image-size', str(SIZE),
            '--out', str(out), '--workers', '2', '--seed', '3', '--policy', 'mix',
            '--heuristic-frac', '0.5', '--episodes-per-shard', str(episodes_per_shard)]


def _assert_same_data(a_path: Path, b_path: Path) -> None:
    a, b = open_dataset(a_path), open_dataset(b_path)
    np.testing.assert_array_equal(a.episode_ids, np.arange(EPISODES))
    np.testing.assert_array_equal(a.episode_ids, b.episode_ids)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.policy, b.policy)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.state, b.state)
    for ep in range(a.num_episodes):
        np.testing.assert_array_equal(a.pixels(ep), b.pixels(ep))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """Uninterrupted, in-process, one shard: episode data must not depend on the shard layout."""
    out = tmp_path_factory.mktemp('ref') / 'data'
    config = CollectConfig(task='tworoom', episodes=EPISODES, steps=STEPS, image_size=SIZE, seed=3,
                           episodes_per_shard=EPISODES, policy=PolicyConfig('mix', 0.5))
    collect(config, out, workers=1)
    return out


def test_format(reference):
    manifest = json.loads((reference / 'manifest.json').read_text())
    assert manifest['format_version'] == 1 and manifest['task'] == 'tworoom'
    assert manifest['dt'] == pytest.approx(0.1)
    with h5py.File(reference / 'shard_000000.h5', 'r') as f:
        assert f['pixels'].shape == (EPISODES * (STEPS + 1), SIZE, SIZE, 3)
        assert f['pixels'].dtype == np.uint8 and f['pixels'].compression == 'gzip'
        assert f['actions'].dtype == np.float32 and f['state'].shape[1] == 4
        assert f.attrs['task'] == 'tworoom' and f.attrs['image_size'] == SIZE
        np.testing.assert_array_equal(f.attrs['action_low'], [-1, -1])
        actions = f['actions'][:].reshape(EPISODES, STEPS + 1, 2)
    assert np.isnan(actions[:, -1]).all() and np.isfinite(actions[:, :-1]).all()
    assert np.abs(actions[:, :-1]).max() <= 1.0
    policy = open_dataset(reference).policy
    assert 0 < policy.sum() < EPISODES  # a mix of both policies


def test_sigkill_then_resume_equals_uninterrupted(reference, tmp_path):
    out = tmp_path / 'data'
    proc = subprocess.Popen(_cli(out, episodes_per_shard=2), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(out.glob('shard_*.h5')) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob('shard_*.h5'))
    assert 0 < len(done) < EPISODES // 2, 'the kill must land mid-collection'
    time.sleep(0.3)  # workers die with their parent (PR_SET_PDEATHSIG)
    for shard in done:  # every complete-named file is readable
        with h5py.File(shard, 'r') as f:
            assert f['pixels'].shape[0] == 2 * (STEPS + 1)
    partial = open_dataset(out)
    assert partial.num_episodes == 2 * len(done)

    subprocess.run(_cli(out, episodes_per_shard=2), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)
    assert not list(out.glob('.*.tmp'))
    _assert_same_data(out, reference)


def test_rerun_with_other_settings_is_refused(reference):
    config = CollectConfig(task='tworoom', episodes=EPISODES, steps=STEPS, image_size=SIZE, seed=4,
                           episodes_per_shard=EPISODES, policy=PolicyConfig('mix', 0.5))
    with pytest.raises(ValueError, match='seed'):
        collect(config, reference, workers=1)


def test_config_validation():
    with pytest.raises(ValueError, match='episodes'):
        CollectConfig(episodes=0)
    with pytest.raises(ValueError, match='heuristic_frac'):
        PolicyConfig('mix', heuristic_frac=1.5)
    with pytest.raises(ValueError, match='kind'):
        PolicyConfig('greedy')


def test_task_args_parse_json_and_python_booleans():
    from lewm_training.collect import _parse_task_arg
    assert _parse_task_arg('show_target=false') == ('show_target', False)
    assert _parse_task_arg('show_target=False') == ('show_target', False)
    assert _parse_task_arg('show_target=True') == ('show_target', True)
    assert _parse_task_arg('arm_visual_radius=0.01') == ('arm_visual_radius', 0.01)
    assert _parse_task_arg('name=abc') == ('name', 'abc')
