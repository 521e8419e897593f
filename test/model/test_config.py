"""Model configuration: presets, parameter counts, the reference config.json layout."""
import json

import pytest

from lewm_ros.model import LeWM, LeWMConfig, count_parameters, preset
from lewm_ros.model.config import EncoderConfig, PredictorConfig

PAPER_PARAMETERS = 18_034_478


def test_paper_preset_matches_reference_size_and_layout():
    model = LeWM(preset('paper'))
    assert abs(count_parameters(model) - PAPER_PARAMETERS) / PAPER_PARAMETERS <= 0.005
    assert count_parameters(model) == PAPER_PARAMETERS
    assert len(model.state_dict()) == 303
    top = {key.split('.')[0] for key in model.state_dict()}
    assert top == {'encoder', 'predictor', 'action_encoder', 'projector', 'pred_proj'}


def test_compact_preset_is_small():
    model = LeWM(preset('compact'))
    assert count_parameters(model) < 2_500_000
    assert model.config.encoder.image_size == 64


def test_reference_dict_round_trip():
    for name in ('paper', 'compact'):
        config = preset(name)
        data = json.loads(json.dumps(config.to_reference_dict()))
        assert LeWMConfig.from_reference_dict(data) == config
    assert set(preset('paper').to_reference_dict()['encoder']) == {'size', 'patch_size', 'image_size', 'pretrained',
                                                                  'use_mask_token'}


def test_bad_values_name_the_field():
    with pytest.raises(ValueError, match='encoder.image_size'):
        EncoderConfig(image_size=100, patch_size=14)
    with pytest.raises(ValueError, match='predictor.dropout'):
        PredictorConfig(dropout=1.5)
    data = preset('paper').to_reference_dict()
    data['predictor']['depht'] = 3
    with pytest.raises(ValueError, match="unknown key.*depht"):
        LeWMConfig.from_reference_dict(data)
    data = preset('paper').to_reference_dict()
    data['projector']['output_dim'] = 64
    with pytest.raises(ValueError, match='predictor.input_dim'):
        LeWMConfig.from_reference_dict(data)
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        preset('huge')
