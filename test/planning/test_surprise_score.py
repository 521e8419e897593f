"""MPCPlanner.observe(score_surprise=True) -> SurpriseProbe: the predictor step on the real history and the
executed block, against the model's own teacher-forced prediction (torch backend, tiny model)."""
import numpy as np
import pytest
import torch

from lewm_ros.model import normalize_images
from lewm_ros.planning import MPCPlanner
from lewm_ros.runtime.backend import InferenceBackend
from lewm_ros.runtime.torch_backend import TorchBackend

from planning_fixtures import ACTION_DIM, FRAMESKIP, IMAGE, tiny_metadata, tiny_model


def frames(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, IMAGE, IMAGE, 3), dtype=np.uint8)


@torch.inference_mode()
def test_score_is_the_squared_error_of_one_predictor_step():
    model, meta = tiny_model(), tiny_metadata()
    planner = MPCPlanner(TorchBackend(model), meta)
    images = frames(5)
    blocks = np.random.default_rng(1).uniform(-0.3, 0.3, (4, FRAMESKIP, ACTION_DIM))
    assert planner.observe(images[0], None, score_surprise=True) is None            # no prediction yet
    scores = [planner.observe(images[i + 1], blocks[i], score_surprise=True)() for i in range(4)]
    assert planner.observe(images[4], blocks[3]) is None                              # not asked for
    z = model.encode(normalize_images(torch.from_numpy(images)))                      # (5, D)
    act = model.encode_actions(torch.from_numpy(meta.normalize_blocks(blocks))[None].float())[0]  # (4, D)
    for i, score in enumerate(scores):   # frame i+1 predicted from frames max(0, i-2)..i and their blocks
        start = max(0, i - model.history + 1)
        predicted = model.predict(z[None, start:i + 1], act[None, start:i + 1])[0, -1]
        assert score == pytest.approx(float(((predicted - z[i + 1]) ** 2).sum()), rel=1e-4)
    assert scores[-1] > 0


def test_backend_without_predictor_step_names_itself():
    class Bare(InferenceBackend):
        name = 'bare'

        def encode(self, pixels):
            raise AssertionError

        def costs(self, candidates, context):
            raise AssertionError

    with pytest.raises(NotImplementedError, match='bare'):
        Bare().predict_next(None, None)
