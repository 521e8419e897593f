"""FP16 variant of a verified ONNX export, derived into the cache and verified against it.

:func:`ensure_fp16` turns an FP32 export directory (:mod:`lewm_ros.runtime.onnx_manifest`;
shipped in a model directory or exported into the cache) into a sibling export whose graphs
compute in FP16 (:func:`~lewm_ros.runtime.onnx_fp16.convert_to_fp16`), with the same file names,
the same float32 inputs and outputs, shared cost-graph weights and a manifest with
``precision: 'fp16'``: the strongly typed TensorRT engines are built from it, and any backend
that reads an export (ONNX Runtime too) can run it.

The variant lives in ``<cache root>/onnx/<model hash>/fp16-<digest of the source graphs>``, so
one FP32 export maps to one FP16 directory, and a re-exported source selects a new one. It is
verified with ONNX Runtime (CPU) against the FP32 graphs on seeded random inputs: encoder max
error <= :data:`FP16_ENCODER_RTOL` x max |latent|, costs max error <= :data:`FP16_COST_RTOL` x
max |cost|. ONNX Runtime's CPU provider lacks float16 kernels for some ops and runs those in
float32 between casts, so this bounds the rounding of weights and of most activations, not
every FP16 kernel of a GPU.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from lewm_ros.jsonio import write_json
from lewm_ros.runtime.engine_cache import derived_onnx_dir
from lewm_ros.runtime.onnx_fp16 import convert_to_fp16
from lewm_ros.runtime.onnx_manifest import (ENCODER_FILE, MANIFEST_FILE, SHARED_WEIGHTS_FILE, ExportError,
                                            OnnxManifest, graph_files, graph_sha256, share_weights)

_LOG = logging.getLogger(__name__)

#: Verification tolerances of the FP16 graphs against the FP32 ones (see the module docstring).
FP16_ENCODER_RTOL = 1e-2
FP16_COST_RTOL = 1e-2


def fp16_dir(source: OnnxManifest, cache_root: str | Path | None = None) -> Path:
    """The cache directory of the FP16 variant of ``source`` (keyed by its graphs' sha256)."""
    digest = hashlib.sha256(''.join(f'{n}:{i["sha256"]};' for n, i in sorted(source.files.items())).encode())
    return derived_onnx_dir(cache_root, source.model_hash, f'fp16-{digest.hexdigest()[:16]}')


def _random_feeds(shapes: dict[str, list], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Standard-normal float32 inputs for the manifest shapes (a dynamic 'batch' axis: 3)."""
    return {name: rng.standard_normal([3 if isinstance(d, str) else d for d in shape]).astype(np.float32)
            for name, shape in shapes.items()}


def _ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3  # float16 nodes without a CPU kernel are announced once per node
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    return session.run(None, feeds)[0]


def verify_fp16(source: OnnxManifest, variant_dir: Path, seed: int = 0) -> dict[str, float]:
    """Max error of each FP16 graph relative to the largest |output| of its FP32 source, on seeded
    random inputs; ExportError when above tolerance."""
    rng = np.random.default_rng(seed)
    errors = {}
    for name, info in source.files.items():
        feeds = _random_feeds(info['inputs'], rng)
        want = _ort_outputs(source.directory / name, feeds)
        got = _ort_outputs(variant_dir / name, feeds)
        if got.shape != want.shape or got.dtype != np.float32:
            raise ExportError(f'{variant_dir / name}: output {got.dtype}{got.shape}, '
                              f'FP32 graph {want.dtype}{want.shape}')
        rel = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
        limit = FP16_ENCODER_RTOL if name == ENCODER_FILE else FP16_COST_RTOL
        if not rel <= limit:
            raise ExportError(f'{variant_dir / name}: FP16 outputs differ from FP32 by {rel:.3g} '
                              f'(max error / max |output|) > {limit}')
        errors[f'{Path(name).stem}_fp16_max_rel_err'] = rel
    return errors


def export_fp16(source: OnnxManifest, out_dir: str | Path) -> OnnxManifest:
    """Write and verify the FP16 variant of the FP32 export ``source`` into ``out_dir``
    (manifest last); returns its manifest."""
    import onnx
    if source.precision != 'fp32':
        raise ExportError(f'{source.directory} holds {source.precision} graphs; an FP16 variant needs the fp32 export')
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    (out_dir / SHARED_WEIGHTS_FILE).unlink(missing_ok=True)
    offsets: dict[str, tuple[int, int]] = {}
    files = {}
    for name, info in source.files.items():
        try:
            model = convert_to_fp16(onnx.load(str(source.directory / name)))
        except Exception as exc:  # noqa: BLE001 -- onnx raises several types; all mean no variant
            raise ExportError(f'cannot convert {source.directory / name} to FP16: {type(exc).__name__}: {exc}') \
                from exc
        path = out_dir / name
        onnx.save(model, str(path))
        if 'external_data' in info:
            share_weights(path, out_dir / SHARED_WEIGHTS_FILE, offsets)
        files[name] = {**info, 'sha256': ''}
    for name, info in files.items():
        info['sha256'] = graph_sha256(*graph_files(out_dir, name, info))
    verification = verify_fp16(source, out_dir)
    manifest = dataclasses.replace(source, directory=out_dir, files=files, precision='fp16',
                                   verification={**source.verification, **verification})
    write_json(out_dir / MANIFEST_FILE, manifest.to_dict())
    _LOG.info('FP16 variant of %s written to %s in %.1f s (worst error %.2g of the largest output)',
              source.directory, out_dir, time.perf_counter() - started, max(verification.values()))
    return manifest


def ensure_fp16(source: OnnxManifest, cache_root: str | Path | None = None) -> OnnxManifest:
    """The verified FP16 variant of ``source`` in the cache: reused when its manifest and files
    fit, else (re)written there with a log line saying why."""
    out_dir = fp16_dir(source, cache_root)
    if (out_dir / MANIFEST_FILE).is_file():
        try:
            manifest = OnnxManifest.load(out_dir)
            reason = manifest.files_changed() or (None if (manifest.precision, manifest.model_hash)
                                                  == ('fp16', source.model_hash) else 'another model or precision')
        except ExportError as exc:
            reason = str(exc)
        if reason is None:
            return manifest
        _LOG.warning('rewriting the FP16 variant in %s: %s', out_dir, reason)
    else:
        _LOG.info('no FP16 variant of %s yet: converting into %s', source.directory, out_dir)
    return export_fp16(source, out_dir)
