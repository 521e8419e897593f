"""Model directory I/O: round trip, strict keys, corrupt files fail with their path, no pickled code."""
import json
import pickle

import pytest
import torch

from lewm_ros.model import CheckpointError, LeWM, ModelMetadata, load_model, load_model_dir, preset, save_model_dir
from lewm_ros.model.checkpoint import to_reference_keys


def _meta():
    return ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0.1, -0.2],
                         action_std=[0.5, 0.7], action_low=[-1, -1], action_high=[1, 1], task='tworoom',
                         preset='compact')


@pytest.fixture()
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = LeWM(preset('compact')).eval()
    save_model_dir(model, tmp_path / 'm', _meta())
    return tmp_path / 'm', model


def test_round_trip_same_outputs(model_dir):
    path, model = model_dir
    loaded, meta = load_model_dir(path)
    assert meta == _meta()
    pixels, blocks = torch.randn(2, 4, 3, 64, 64), torch.randn(2, 4, 10)
    with torch.no_grad():
        assert torch.equal(model(pixels, blocks).pred, loaded(pixels, blocks).pred)
    assert not loaded.training


def test_missing_or_extra_keys_fail_with_path(model_dir):
    path, _ = model_dir
    state = torch.load(path / 'weights.pt', weights_only=True)
    state.pop('pred_proj.net.0.bias')
    torch.save(state, path / 'weights.pt')
    with pytest.raises(CheckpointError, match=r'(?s)weights\.pt.*pred_proj\.net\.0\.bias'):
        load_model(path)


def test_corrupt_weights_fail_with_path(model_dir):
    path, _ = model_dir
    (path / 'weights.pt').write_bytes(b'not a torch file')
    with pytest.raises(CheckpointError, match=str(path / 'weights.pt')):
        load_model(path)


def test_pickled_code_is_never_executed(model_dir, tmp_path):
    path, _ = model_dir
    marker = tmp_path / 'pwned'

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    with open(path / 'weights.pt', 'wb') as f:
        pickle.dump({'x': Exploit()}, f)
    with pytest.raises(CheckpointError, match='weights.pt'):
        load_model(path)
    assert not marker.exists()


def test_bad_config_and_metadata_name_the_file(model_dir):
    path, _ = model_dir
    (path / 'lewm_meta.json').write_text(json.dumps({**_meta().to_dict(), 'action_std': [1.0, 0.0]}))
    with pytest.raises(ValueError, match='lewm_meta.json.*action_std'):
        load_model_dir(path)
    (path / 'config.json').write_text('{"encoder": {}}')
    with pytest.raises(CheckpointError, match='config.json.*missing section'):
        load_model(path)
    with pytest.raises(CheckpointError, match='does not exist'):
        load_model(path / 'nope')


def test_safetensors_weights_load(model_dir):
    from safetensors.torch import save_file
    path, model = model_dir
    state = torch.load(path / 'weights.pt', weights_only=True)
    (path / 'weights.pt').unlink()
    save_file(state, str(path / 'weights.safetensors'))
    loaded = load_model(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_hf5_encoder_names_are_mapped():
    keys = {'encoder.layers.3.attention.q_proj.weight': 0, 'encoder.layers.0.mlp.fc2.bias': 0,
            'predictor.pos_embedding': 1}
    assert set(to_reference_keys({k: torch.zeros(1) for k in keys})) == {
        'encoder.encoder.layer.3.attention.attention.query.weight', 'encoder.encoder.layer.0.output.dense.bias',
        'predictor.pos_embedding'}


def test_metadata_block_normalisation_round_trip():
    meta = _meta()
    raw = torch.randn(7, 5, 2).numpy()
    blocks = meta.normalize_blocks(raw)
    assert blocks.shape == (7, 10)
    assert abs(float(blocks[0, 0]) - (raw[0, 0, 0] - 0.1) / 0.5) < 1e-5
    back = meta.denormalize_blocks(blocks)
    assert back.shape == (7, 5, 2) and abs(back - raw).max() < 1e-5
