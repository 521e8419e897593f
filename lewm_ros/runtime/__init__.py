"""Inference behind one interface (no ROS imports).

``backend`` (the interface, ``BACKEND_NAMES``, the ``make_backend`` factory), ``torch_backend``,
``onnx_backend``, ``tensorrt_backend`` (+ ``engine_cache``, ``engine_cli``); ``rollout`` (the
predictor rollout) and ``critics`` (the weighted cost terms); ``onnx_manifest`` (the ONNX export
format, read by the ONNX Runtime and TensorRT backends) apart from ``export`` (the torch exporter).
"""
