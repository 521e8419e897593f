"""MPCPlanner: history window, cached goal, warm start shifted by executed blocks, bounds,
image checks, and a plan on the compact preset."""
import dataclasses

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, preset
from lewm_ros.planning import CEMConfig, MPCConfig, MPCPlanner
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.torch_backend import TorchBackend

from planning_fixtures import ACTION_DIM, FRAMESKIP, IMAGE, tiny_metadata, tiny_model

FAST = MPCConfig(cem=CEMConfig(num_samples=16, num_elites=4, iterations=2, clamp_to_bounds=True),
                 warm_iterations=1)


def frame(seed: int, size: int = IMAGE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def planner(config: MPCConfig = FAST) -> MPCPlanner:
    return MPCPlanner(TorchBackend(tiny_model()), tiny_metadata(), config)


def executed(value: float = 0.0) -> np.ndarray:
    return np.full((FRAMESKIP, ACTION_DIM), value)


def test_plan_shapes_units_and_bounds(tiny_model_dir):
    mpc = MPCPlanner.from_model_dir(tiny_model_dir, config=FAST)
    mpc.set_goal(frame(0))
    mpc.observe(frame(1))
    plan = mpc.plan()
    assert plan.raw_actions.shape == (5, FRAMESKIP, ACTION_DIM) and plan.raw_actions.dtype == np.float64
    assert plan.blocks.shape == (5, FRAMESKIP * ACTION_DIM)
    meta = tiny_metadata()
    assert (plan.raw_actions >= np.array(meta.action_low)).all()
    assert (plan.raw_actions <= np.array(meta.action_high)).all()
    # clamped in z-space, so the de-normalised mean is already inside the bounds
    np.testing.assert_allclose(plan.raw_actions, meta.denormalize_blocks(plan.blocks), atol=1e-5)
    assert plan.iterations == 2 and len(plan.cost_history) == 2 and plan.latency_s > 0
    assert not plan.warm_started and np.isfinite(plan.cost)


def test_raw_actions_are_clipped_to_the_bounds_without_clamping():
    mpc = planner(MPCConfig(cem=CEMConfig(num_samples=16, num_elites=4, iterations=1, init_std=5.0)))
    mpc.set_goal(frame(0))
    mpc.observe(frame(1))
    plan = mpc.plan()
    meta = tiny_metadata()
    assert np.abs(meta.denormalize_blocks(plan.blocks)).max() > 1.0   # the z-space mean leaves the box ...
    assert (plan.raw_actions >= np.array(meta.action_low)).all()      # ... the commands do not
    assert (plan.raw_actions <= np.array(meta.action_high)).all()


def test_history_window_keeps_the_last_frames_and_blocks():
    mpc = planner()
    mpc.observe(frame(0))
    for i in range(1, 5):
        mpc.observe(frame(i), executed(0.1 * i))
    mpc.set_goal(frame(9))
    context = mpc.context()
    assert context.history_latents.shape == (3, 16) and context.history_blocks.shape == (2, 4)
    expected = torch.from_numpy(tiny_metadata().normalize_blocks(np.stack([executed(0.3), executed(0.4)])))
    assert torch.allclose(context.history_blocks, expected)
    reference = planner()                              # the newest latent is the newest frame's
    reference.observe(frame(4))
    reference.set_goal(frame(9))
    assert torch.allclose(context.history_latents[-1], reference.context().history_latents[0])
    mpc.observe(frame(5))                              # unknown executed block: history restarts
    assert mpc.num_frames == 1 and mpc.context().history_blocks.shape == (0, 4)


def test_history_one_like_the_reference_eval():
    mpc = planner(MPCConfig(cem=FAST.cem, history=1))
    mpc.observe(frame(0))
    mpc.observe(frame(1), executed())
    mpc.set_goal(frame(2))
    assert mpc.num_frames == 1 and mpc.context().history_blocks.shape == (0, 4)
    assert mpc.plan().blocks.shape == (5, 4)
    with pytest.raises(ValueError, match='mpc.history'):
        planner(MPCConfig(history=4))


def test_warm_start_shifts_by_the_executed_block():
    mpc = planner()
    mpc.set_goal(frame(0))
    mpc.observe(frame(1))
    first = mpc.plan()
    mpc.observe(frame(2), executed())
    expected = np.concatenate([first.blocks[1:], np.zeros((1, 4), np.float32)])
    np.testing.assert_array_equal(mpc.warm_start_mean.numpy(), expected)
    second = mpc.plan()
    assert second.warm_started and second.iterations == 1
    mpc.shift_executed(2)
    np.testing.assert_array_equal(mpc.warm_start_mean.numpy()[:3], second.blocks[2:])
    assert not mpc.warm_start_mean[3:].any()
    mpc.shift_executed(5)
    assert mpc.warm_start_mean is None
    mpc.reset()
    assert mpc.warm_start_mean is None and mpc.num_frames == 0 and mpc.has_goal


def test_same_inputs_after_reset_give_the_same_plan():
    mpc = planner()
    mpc.set_goal(frame(0))
    plans = []
    for _ in range(2):
        mpc.reset()
        mpc.observe(frame(1))
        mpc.plan()
        mpc.observe(frame(2), executed(0.2))
        plans.append(mpc.plan())
    np.testing.assert_array_equal(plans[0].blocks, plans[1].blocks)


def test_wrong_image_size_and_call_order_errors():
    mpc = planner()
    with pytest.raises(ValueError, match=r'expected an image of shape \(32, 32, 3\).*got \(64, 64, 3\)'):
        mpc.set_goal(frame(0, size=64))
    with pytest.raises(ValueError, match='uint8'):
        mpc.observe(frame(0).astype(np.float32))
    with pytest.raises(RuntimeError, match='set_goal'):
        mpc.observe(frame(0))
        mpc.plan()
    mpc.set_goal(frame(1))
    with pytest.raises(ValueError, match='executed_raw_actions'):
        mpc.observe(frame(2), np.zeros((FRAMESKIP + 1, ACTION_DIM)))


def test_metadata_must_match_the_model():
    meta = ModelMetadata(action_dim=3, frameskip=2, history=3, image_size=IMAGE, action_mean=[0] * 3,
                         action_std=[1] * 3, action_low=[-1] * 3, action_high=[1] * 3)
    with pytest.raises(ValueError, match='block_dim'):
        MPCPlanner(TorchBackend(tiny_model()), meta, FAST)


def test_plan_on_the_compact_preset():
    torch.manual_seed(0)
    model = LeWM(preset('compact')).eval()
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0, 0],
                         action_std=[1, 1], action_low=[-1, -1], action_high=[1, 1], preset='compact')
    mpc = MPCPlanner(TorchBackend(model), meta)                       # the default MPCConfig
    mpc.set_goal(frame(0, size=64))
    mpc.observe(frame(1, size=64))
    cold = mpc.plan()
    mpc.observe(frame(2, size=64), cold.raw_actions[0])
    warm = mpc.plan()
    assert cold.raw_actions.shape == warm.raw_actions.shape == (5, 5, 2)
    assert not cold.warm_started and warm.warm_started
    assert cold.iterations == MPCConfig().cem.iterations and warm.iterations == MPCConfig().warm_iterations
    assert np.abs(warm.raw_actions).max() <= 1.0


@pytest.mark.parametrize('kwargs, field', [({'warm_iterations': 0}, 'warm_iterations'),
                                           ({'warm_std': -1.0}, 'warm_std'), ({'history': 0}, 'history'),
                                           ({'cem': {}}, 'cem')])
def test_mpc_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f'mpc.{field}'):
        MPCConfig(**kwargs)


def test_onnxruntime_and_torch_planners_agree(tiny_model_dir):
    """Same seed, inputs and budget: the ONNX Runtime planner (built for this config's static
    planning batch) returns the torch planner's plan and cost, over a warm-started MPC sequence."""
    planners = [MPCPlanner.from_model_dir(tiny_model_dir, backend=name, config=FAST)
                for name in ('torch', 'onnxruntime')]
    plans = {0: [], 1: []}
    for i, mpc in enumerate(planners):
        mpc.set_goal(frame(0))
        mpc.observe(frame(1))
        for step in range(3):
            plan = mpc.plan()
            plans[i].append(plan)
            mpc.observe(frame(2 + step), plan.raw_actions[0])
    for a, b in zip(plans[0], plans[1]):
        np.testing.assert_allclose(a.blocks, b.blocks, atol=1e-4)
        assert abs(a.cost - b.cost) <= 1e-4 * max(1.0, abs(a.cost))


def test_config_cost_reaches_the_backend_and_a_mismatch_is_rejected(tiny_model_dir):
    """MPCConfig.cost (default: the paper's terminal cost) is what the planner's backend scores with."""
    assert MPCConfig().cost == LatentCostConfig()
    effort = dataclasses.replace(FAST, cost=LatentCostConfig(stage_weight=0.5, action_weight=0.1))
    mpc = MPCPlanner.from_model_dir(tiny_model_dir, config=effort)
    assert mpc.backend.cost == effort.cost
    with pytest.raises(ValueError, match='mpc.cost'):
        MPCPlanner(TorchBackend(tiny_model()), tiny_metadata(), effort)
    with pytest.raises(ValueError, match='mpc.cost'):
        MPCConfig(cost={'stage_weight': 1.0})
