"""Test-wide settings: small thread counts (2-core CI), local-only ROS traffic, a per-run engine cache."""
import os
import tempfile

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('MUJOCO_GL', 'egl')
# Derived ONNX exports and TensorRT engines go to a per-run cache, never to the user's ~/.cache.
os.environ.setdefault('LEWM_ENGINE_CACHE', tempfile.mkdtemp(prefix='lewm_test_cache_'))

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_configure(config):
    # A background thread that dies (an executor spin, a camera or planner thread) fails its test.
    config.addinivalue_line('filterwarnings', 'error::pytest.PytestUnhandledThreadExceptionWarning')
