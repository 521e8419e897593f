"""Dataset reader and training windows on a real (tiny) collected dataset."""
import shutil

import numpy as np
import pytest
import torch

from lewm_training.collect import CollectConfig, collect
from lewm_training.dataset import WindowDataset, action_stats, open_dataset, split_episodes
from lewm_training.policies import PolicyConfig
from lewm_training.tasks import make_task

EPISODES, STEPS, SIZE, PER_SHARD = 6, 30, 16, 2


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('ds') / 'tworoom'
    config = CollectConfig(task='tworoom', episodes=EPISODES, steps=STEPS, image_size=SIZE, seed=1,
                           episodes_per_shard=PER_SHARD, policy=PolicyConfig('mix', 0.5))
    collect(config, out, workers=1)
    return out


def test_episode_dataset(data_dir):
    ds = open_dataset(data_dir)
    assert ds.in_memory and ds.num_episodes == EPISODES
    np.testing.assert_array_equal(ds.lengths, STEPS + 1)
    assert ds.metadata.task == 'tworoom' and ds.metadata.dt == pytest.approx(0.1)
    assert ds.pixels(2).shape == (STEPS + 1, SIZE, SIZE, 3)
    assert ds.episode_state(2).shape == (STEPS + 1, 4)
    lazy = open_dataset(data_dir, in_memory=False)
    assert not lazy.in_memory
    for ep in range(EPISODES):
        np.testing.assert_array_equal(lazy.pixels(ep, np.array([0, 5, 30])), ds.pixels(ep)[[0, 5, 30]])


def test_partial_dataset(data_dir, tmp_path):
    partial = tmp_path / 'partial'
    shutil.copytree(data_dir, partial)
    (partial / 'shard_000001.h5').unlink()
    (partial / '.shard_000002.h5.123.tmp').write_bytes(b'half a file')
    ds = open_dataset(partial)
    np.testing.assert_array_equal(ds.episode_ids, [0, 1, 4, 5])
    full = open_dataset(data_dir)
    np.testing.assert_array_equal(ds.pixels(2), full.pixels(4))


@pytest.mark.parametrize('in_memory', [True, False])
def test_windows_stay_inside_episodes_and_blocks_line_up(data_dir, in_memory):
    ds = open_dataset(data_dir, in_memory=in_memory)
    history, num_preds, skip = 3, 1, 5
    t = history + num_preds
    windows = WindowDataset(ds, history=history, num_preds=num_preds, frameskip=skip)
    assert len(windows) == EPISODES * (STEPS + 1 - t * skip)
    for index in range(len(windows)):
        w = windows[index]
        frames = w.start + np.arange(t) * skip
        assert frames[-1] < ds.lengths[w.episode]
        assert w.actions.shape == (t, skip * 2) and w.actions.dtype == torch.float32
        assert torch.isfinite(w.actions).all()  # never reaches past the last action of the episode
        np.testing.assert_array_equal(w.state.numpy(), ds.episode_state(w.episode)[frames])
        np.testing.assert_array_equal(w.pixels.numpy(), ds.pixels(w.episode)[frames])
        raw = ds.episode_actions(w.episode)
        for i, frame in enumerate(frames):
            np.testing.assert_array_equal(w.actions[i].numpy(), raw[frame:frame + skip].reshape(-1))


def test_action_block_drives_frame_to_next_frame(data_dir):
    """Replaying a window's action block from its frame's state reproduces the next frame's state."""
    ds = open_dataset(data_dir)
    windows = WindowDataset(ds, history=3, num_preds=1, frameskip=5)
    task = make_task('tworoom', image_size=SIZE)
    for index in (0, 17, len(windows) - 1):
        w = windows[index]
        task.reset(options={'state': w.state[0].numpy()})
        for action in w.actions[0].numpy().reshape(5, 2):
            obs, *_ = task.step(action)
        np.testing.assert_allclose(obs.state, w.state[1].numpy(), atol=1e-4)
    task.close()


def test_windows_over_selected_episodes_and_dataloader(data_dir):
    ds = open_dataset(data_dir, in_memory=False)
    windows = WindowDataset(ds, history=2, num_preds=1, frameskip=3, episodes=[1, 4])
    assert set(windows[i].episode for i in range(len(windows))) == {1, 4}
    loader = torch.utils.data.DataLoader(windows, batch_size=8, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    batch = next(iter(loader))
    assert batch.pixels.shape == (8, 3, SIZE, SIZE, 3) and batch.pixels.dtype == torch.uint8
    assert batch.actions.shape == (8, 3, 6) and batch.state.shape == (8, 3, 4)
    with pytest.raises(ValueError, match='frameskip'):
        WindowDataset(ds, frameskip=0)


def test_split_episodes():
    train, val = split_episodes(100, val_frac=0.1, seed=0)
    assert len(train) == 90 and len(val) == 10
    assert not set(train) & set(val) and set(train) | set(val) == set(range(100))
    again = split_episodes(100, val_frac=0.1, seed=0)
    np.testing.assert_array_equal(again[1], val)
    assert len(split_episodes(5, 0.1)[1]) == 1
    with pytest.raises(ValueError, match='val_frac'):
        split_episodes(10, val_frac=1.0)


def test_action_stats(data_dir):
    ds = open_dataset(data_dir)
    mean, std = action_stats(ds)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == (2,)
    actions = ds.actions[np.isfinite(ds.actions).all(axis=1)]
    assert len(actions) == EPISODES * STEPS
    np.testing.assert_allclose(mean, actions.mean(0), atol=1e-6)
    np.testing.assert_allclose(std, actions.std(0), rtol=1e-5)
    mean_one, _ = action_stats(ds, episodes=[0])
    np.testing.assert_allclose(mean_one, ds.episode_actions(0)[:-1].mean(0), atol=1e-6)
