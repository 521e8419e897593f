"""The planner and surprise monitor a configured planner_node runs, from its validated
parameters (no ROS imports)."""
from __future__ import annotations

from lewm_ros.control.node_params import NodeParams
from lewm_ros.control.surprise_calibration import load_calibration
from lewm_ros.control.surprise_monitor import SurpriseMonitor
from lewm_ros.planning import MPCPlanner


def build_planner(params: NodeParams) -> MPCPlanner:
    """The MPC planner for the parameters (raises ValueError/OSError naming the model path).
    cpu_threads > 0 sets the intra-op threads of the backend's runtime: torch's (process-wide) for
    the torch backend, ONNX Runtime's for onnxruntime (which imports no torch)."""
    model = params.model
    options = {}
    if model.cpu_threads and model.backend == 'torch':
        import torch
        torch.set_num_threads(model.cpu_threads)
    elif model.cpu_threads and model.backend == 'onnxruntime':
        options['num_threads'] = model.cpu_threads
    return MPCPlanner.from_model_dir(model.model_dir, backend=model.backend, device=model.device,
                                     config=params.planner.mpc_config(), **options)


def build_surprise_monitor(params: NodeParams, planner: MPCPlanner) -> SurpriseMonitor | None:
    """The monitor for ``surprise.*`` (None for action 'none'), with the model's calibration when
    it ships one. ValueError when the backend has no predictor step or the calibration is invalid."""
    if not params.surprise.enabled:
        return None
    problem = planner.backend.predictor_missing()
    if problem:
        raise ValueError(f'surprise.action={params.surprise.action!r} needs a predictor step: {problem}; '
                         'or set surprise.action none')
    return SurpriseMonitor(params.surprise, load_calibration(params.model.model_dir))
