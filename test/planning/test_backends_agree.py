"""One CEM on every array namespace: the MPC planner on ONNX Runtime (numpy arrays, the
torch-free path) and on torch, same model, frames, executed blocks and seed, plans the same
sequence of plans (cold, then warm-started) up to cost rounding."""
import numpy as np

from lewm_ros.planning import CEMConfig, MPCConfig, MPCPlanner

CONFIG = MPCConfig(cem=CEMConfig(num_samples=16, num_elites=4, iterations=3, clamp_to_bounds=True,
                                 hold_actions=True), warm_iterations=2)


def _plans(planner: MPCPlanner, frames: np.ndarray) -> list:
    planner.set_goal(frames[0])
    planner.observe(frames[1])
    plans = [planner.plan()]
    for frame in frames[2:]:
        planner.observe(frame, plans[-1].raw_actions[0])   # the executed block: the first planned one
        plans.append(planner.plan())
    return plans


def test_onnxruntime_on_numpy_plans_like_torch(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('LEWM_ENGINE_CACHE', str(tmp_path))   # the export of this batch goes there
    frames = np.random.default_rng(7).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    onnx = MPCPlanner.from_model_dir(tiny_model_dir, backend='onnxruntime', config=CONFIG)
    torch = MPCPlanner.from_model_dir(tiny_model_dir, backend='torch', config=CONFIG)
    assert (onnx.arrays.library, torch.arrays.library) == ('numpy', 'torch')
    for got, want in zip(_plans(onnx, frames), _plans(torch, frames), strict=True):
        assert got.warm_started == want.warm_started
        assert abs(got.cost - want.cost) <= 1e-5 * abs(want.cost)
        np.testing.assert_allclose(got.raw_actions, want.raw_actions, atol=1e-5)
