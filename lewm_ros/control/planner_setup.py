"""The planner a configured planner_node runs, from its validated parameters (no ROS imports)."""
from __future__ import annotations

from lewm_ros.control.node_params import NodeParams
from lewm_ros.planning import MPCPlanner


def build_planner(params: NodeParams) -> MPCPlanner:
    """The MPC planner for the parameters (raises ValueError/OSError naming the model path).
    cpu_threads > 0 sets torch's intra-op threads (process-wide) and ONNX Runtime's."""
    model = params.model
    options = {}
    if model.cpu_threads:
        import torch
        torch.set_num_threads(model.cpu_threads)
        if model.backend == 'onnxruntime':
            options['num_threads'] = model.cpu_threads
    return MPCPlanner.from_model_dir(model.model_dir, backend=model.backend, device=model.device,
                                     config=params.planner.mpc_config(), **options)
