"""``lewm-train convert``: a stable-worldmodel HDF5 file -> the project's dataset -> ``fit``.

Provenance of the fixture: the test writes its own small file in the layout that
``galilai-group/stable-worldmodel`` writes (``stable_worldmodel/world.py`` at commit 53a4776, the
HDF5 writer of the paper's datasets, and ``stable_worldmodel/data/formats/hdf5.py``): one dataset
per column with all episodes' rows concatenated, ``ep_len`` (E,) int32 and ``ep_offset`` (E,) int64
delimiting episodes, ``pixels`` (N, H, W, 3) uint8, ``action`` (N, A) float32 with the NaN of each
episode on its last row (the recorder moves the reset row's NaN to the end), ``proprio`` and
``state`` (N, D) vectors, plus columns the converter ignores (``reward``, ``step_idx``,
``ep_idx``). No file from that repository or its datasets is used.
"""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from lewm_ros.camera import CameraPipeline
from lewm_training.dataset import open_dataset
from lewm_training.swm_convert import ConvertConfig, LayoutError, convert

LENGTHS = (26, 1, 30, 28, 27)  # episode 1 has no action and is skipped
ACTION_DIM = 2


def write_swm_file(path, lengths=LENGTHS, skip=(), channels_first=False):
    """A small file in the stable-worldmodel HDF5 layout (``skip``: columns to leave out)."""
    rng = np.random.default_rng(0)
    n = sum(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pixels = rng.integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32)
    action[offsets + np.asarray(lengths) - 1] = np.nan  # last row of each episode
    columns = {
        'pixels': pixels.transpose(0, 3, 1, 2) if channels_first else pixels,
        'action': action,
        'proprio': rng.normal(size=(n, 4)).astype(np.float32),
        'state': rng.normal(size=(n, 5)).astype(np.float32),
        'reward': np.zeros(n, np.float32),
        'step_idx': np.concatenate([np.arange(k) for k in lengths]).astype(np.int64),
        'ep_idx': np.repeat(np.arange(len(lengths)), lengths).astype(np.int32),
        'ep_len': np.asarray(lengths, np.int32),
        'ep_offset': offsets,
    }
    with h5py.File(path, 'w') as f:
        for key, value in columns.items():
            if key in skip:
                continue
            chunks = (min(100, len(value)),) + value.shape[1:] if value.ndim >= 2 else None
            f.create_dataset(key, data=value, chunks=chunks)
    return columns


def test_round_trip_frames_actions_state_and_resume(tmp_path):
    src = tmp_path / 'pusht_expert_train.h5'
    columns = write_swm_file(src)
    out = tmp_path / 'data'
    report = convert(ConvertConfig(src=src, image_size=32, episodes_per_shard=2), out, progress=False)
    assert (report.episodes, report.skipped) == (4, 1)
    ds = open_dataset(out)
    info = ds.metadata
    assert (info.task, info.image_size, info.action_dim, info.state_dim) == ('pusht_expert_train', 32, 2, 5)
    assert info.steps == max(LENGTHS) - 1 and info.num_shards == 2
    camera = CameraPipeline(32)
    offsets = columns['ep_offset']
    assert ds.episode_ids.tolist() == [0, 2, 3, 4]  # the source episode indices
    for pos, ep in enumerate(ds.episode_ids.tolist()):
        rows = slice(offsets[ep], offsets[ep] + LENGTHS[ep])
        expected = np.stack([camera.from_rgb(frame) for frame in columns['pixels'][rows]])
        np.testing.assert_array_equal(ds.pixels(pos), expected)
        np.testing.assert_array_equal(ds.episode_actions(pos), columns['action'][rows])  # NaN last row included
        np.testing.assert_array_equal(ds.episode_state(pos), columns['state'][rows])
    np.testing.assert_allclose(info.action_low, np.nanmin(columns['action'], axis=0), rtol=1e-6)

    # Resumable: a lost shard is rewritten, identical; the present one is kept.
    kept = (out / 'shard_000000.h5').stat().st_mtime_ns
    before = (out / 'shard_000001.h5').read_bytes()
    (out / 'shard_000001.h5').unlink()
    convert(ConvertConfig(src=src, image_size=32, episodes_per_shard=2), out, progress=False)
    assert (out / 'shard_000000.h5').stat().st_mtime_ns == kept
    assert open_dataset(out).num_episodes == 4
    assert len((out / 'shard_000001.h5').read_bytes()) == len(before)
    with pytest.raises(ValueError, match='image_size'):  # other settings into the same directory
        convert(ConvertConfig(src=src, image_size=48, episodes_per_shard=2), out, progress=False)


def test_channels_first_proprio_and_cli(tmp_path):
    from lewm_training.cli import main
    src = tmp_path / 'cube.h5'
    columns = write_swm_file(src, lengths=(6, 7), skip=('state',), channels_first=True)
    assert main(['convert', str(src), '--out', str(tmp_path / 'd'), '--image-size', '16', '--task', 'cube',
                 '--dt', '0.05', '--no-progress']) == 0
    ds = open_dataset(tmp_path / 'd')
    assert (ds.metadata.task, ds.metadata.dt, ds.metadata.state_dim) == ('cube', 0.05, 4)  # proprio
    frame = columns['pixels'][0].transpose(1, 2, 0)
    np.testing.assert_array_equal(ds.pixels(0)[0], CameraPipeline(16).from_rgb(np.ascontiguousarray(frame)))


@pytest.mark.parametrize('missing', ['ep_len', 'ep_offset', 'pixels', 'action'])
def test_a_file_not_in_the_layout_names_the_key(tmp_path, missing):
    src = tmp_path / 'bad.h5'
    write_swm_file(src, lengths=(5, 5), skip=(missing,))
    with pytest.raises(LayoutError, match=f"dataset '{missing}' is missing"):
        convert(ConvertConfig(src=src, image_size=16), tmp_path / 'out', progress=False)
    assert not (tmp_path / 'out').exists()
    not_h5 = tmp_path / 'not.h5'
    not_h5.write_bytes(b'plain text')
    with pytest.raises(LayoutError, match='not a readable HDF5 file'):
        convert(ConvertConfig(src=not_h5, image_size=16), tmp_path / 'out', progress=False)


def test_fit_trains_two_steps_on_a_converted_file(tmp_path):
    from lewm_training.fit import fit
    from lewm_training.synthetic import tiny_model_config
    from lewm_training.train_config import TrainConfig
    src = tmp_path / 'tworoom.h5'
    write_swm_file(src)
    convert(ConvertConfig(src=src, image_size=32), tmp_path / 'data', progress=False)
    model_json = tmp_path / 'tiny.json'
    model_json.write_text(json.dumps(tiny_model_config().to_reference_dict()))
    result = fit(TrainConfig(data=str(tmp_path / 'data'), out=str(tmp_path / 'run'), model_config=str(model_json),
                             steps=2, batch_size=4, log_every=1, val_every=100, checkpoint_every=100, val_frac=0.0,
                             sigreg_proj=16, bn_recal_windows=4, threads=1, tensorboard=False, progress=False))
    meta = json.loads((result.model_dir / 'lewm_meta.json').read_text())
    assert meta['task'] == 'tworoom' and meta['image_size'] == 32
    shutil.rmtree(tmp_path / 'run')


def test_blosc_compressed_pixels_as_the_published_files(tmp_path):
    """The paper-time writer compresses (N, ...) columns of >= 2 dims with Blosc/LZ4 via hdf5plugin."""
    import hdf5plugin  # a dependency (requirements.txt): reads the Blosc filter of the published files
    src = tmp_path / 'reacher.h5'
    columns = write_swm_file(src, lengths=(5, 6), skip=('pixels',))
    with h5py.File(src, 'a') as f:
        f.create_dataset('pixels', data=columns['pixels'], chunks=(10, 40, 48, 3),
                         compression=hdf5plugin.Blosc(cname='lz4', clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    convert(ConvertConfig(src=src, image_size=16), tmp_path / 'data', progress=False)
    np.testing.assert_array_equal(open_dataset(tmp_path / 'data').pixels(1)[-1],
                                  CameraPipeline(16).from_rgb(columns['pixels'][-1]))
