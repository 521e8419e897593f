"""Inference behind one interface (no ROS imports).

``backend`` (the interface, ``BACKEND_NAMES``, the ``make_backend`` factory), ``arrays`` (the
array namespace and device a backend's arrays live in: numpy or torch), ``torch_backend``,
``onnx_backend``, ``tensorrt_backend`` (+ ``tensorrt_io``: engine I/O through torch or pycuda,
``tensorrt_build``: the TensorRT 10/11 version gate and strongly typed engine build,
``build_progress``: its progress log, ``engine_cache``, ``engine_cli``); ``rollout`` (the
predictor rollout) and ``critics`` (the weighted cost terms); ``onnx_manifest`` (the ONNX export
format, read by the ONNX Runtime and TensorRT backends) and ``onnx_exports`` (where a model's
exports are, found without torch) apart from ``export`` (the torch exporter); ``onnx_fp16`` (an
FP32 graph -> FP16 compute, float32 I/O) and ``fp16_export`` (the verified FP16 variant of an export, in the cache).
"""
