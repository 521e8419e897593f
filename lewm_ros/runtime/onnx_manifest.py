"""The ONNX export format: file names, graph signatures and ``onnx_manifest.json``.

One room for what the exporter (:mod:`lewm_ros.runtime.export`, torch) writes and the ONNX
Runtime and TensorRT backends read; a backend imports this module, never the exporter.

An export directory holds:

- ``encoder.onnx``: ``pixels`` (B, 3, S, S) float32 [ImageNet-normalised] -> ``latents`` (B, D);
  the batch axis B is dynamic.
- ``rollout_cost_k{k}.onnx`` for k = 1..history real history frames, all shapes static:
  ``candidates`` (N, H, block) [z-scored], ``history_latents`` (k, D), ``history_blocks``
  (k-1, block) [z-scored] (absent when k == 1), ``goal`` (D,) -> ``costs`` (N,); their large
  weights live once in ``rollout_weights.bin`` (ONNX external data).
- ``predict_k{k}.onnx`` for k = 1..history, static shapes: one predictor step (the surprise
  monitor's prediction), ``history_latents`` (k, D), ``history_blocks`` (k-1, block) [z-scored]
  (absent when k == 1), ``block`` (block,) [z-scored] -> ``latent`` (D,); weights in the same
  shared file. Exports made before these graphs existed lack them (the backends then have no
  predictor step).
- ``onnx_manifest.json`` (written last: a directory without one is not an export): format
  version, opset, static shapes, sha256 of each graph (with its external weights), the model
  hash (sha256 of ``config.json`` + weights), the cost weights baked into the cost graphs and
  the measured verification errors.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from lewm_ros.model.model_dir import CONFIG_FILE, find_weights
from lewm_ros.runtime.critics import LatentCostConfig

MANIFEST_FILE = 'onnx_manifest.json'
MANIFEST_VERSION = 1
ENCODER_FILE = 'encoder.onnx'
#: Weights shared by the rollout-cost graphs (ONNX external data, deduplicated by content): the
#: k = 1..history graphs hold the same predictor, so it is stored once.
SHARED_WEIGHTS_FILE = 'rollout_weights.bin'
#: Initializers of at least this many bytes go to the shared weights file.
EXTERNAL_MIN_BYTES = 1024
DEFAULT_OPSET = 17
ENCODER_INPUTS = ('pixels',)
ENCODER_OUTPUTS = ('latents',)
COST_OUTPUTS = ('costs',)
PREDICT_OUTPUTS = ('latent',)


class ExportError(RuntimeError):
    """Export, verification or manifest reading failed; the message names the file and the reason."""


def cost_file(k: int) -> str:
    """File name of the rollout-cost graph for k real history frames."""
    return f'rollout_cost_k{k}.onnx'


def cost_input_names(k: int) -> tuple[str, ...]:
    """Input names of the rollout-cost graph for k history frames, in graph order."""
    if k == 1:
        return ('candidates', 'history_latents', 'goal')
    return ('candidates', 'history_latents', 'history_blocks', 'goal')


def predict_file(k: int) -> str:
    """File name of the predictor-step graph for k history frames."""
    return f'predict_k{k}.onnx'


def predict_input_names(k: int) -> tuple[str, ...]:
    """Input names of the predictor-step graph for k history frames, in graph order."""
    if k == 1:
        return ('history_latents', 'block')
    return ('history_latents', 'history_blocks', 'block')


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def graph_sha256(path: Path, *external: Path) -> str:
    """sha256 of an ONNX file, and of its external weights when it has them (engine cache keys
    and staleness checks must change when the weights do, not only the graph)."""
    if not external:
        return sha256_file(path)
    digest = hashlib.sha256()
    for part in (path, *external):
        digest.update(bytes.fromhex(sha256_file(part)))
    return digest.hexdigest()


def graph_files(directory: Path, name: str, info: dict) -> list[Path]:
    """An exported graph's files, per its manifest entry: the .onnx, then its external weights."""
    return [directory / name] + ([directory / info['external_data']] if 'external_data' in info else [])


def share_weights(path: Path, store: Path, offsets: dict[str, tuple[int, int]]) -> None:
    """Move the large initializers (>= 1 KiB) of the ONNX file ``path`` into the shared
    external-data file ``store`` (appending only tensors not already there, found by content;
    ``offsets``: sha256 -> (offset, length) of what ``store`` holds), and rewrite ``path``."""
    import onnx
    from onnx.external_data_helper import set_external_data
    model = onnx.load(str(path))
    with open(store, 'ab') as data:
        for tensor in model.graph.initializer:
            raw = tensor.raw_data
            if len(raw) < EXTERNAL_MIN_BYTES:
                continue
            key = hashlib.sha256(raw).hexdigest()
            if key not in offsets:
                offsets[key] = (data.tell(), len(raw))
                data.write(raw)
            offset, length = offsets[key]
            set_external_data(tensor, store.name, offset=offset, length=length)
            tensor.ClearField('raw_data')
    onnx.save(model, str(path))


def model_hash(model_dir: str | Path) -> str:
    """Hex sha256 over ``config.json`` and the weights file of a model directory."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    for path in (model_dir / CONFIG_FILE, find_weights(model_dir)):
        digest.update(path.name.encode())
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


@dataclass(frozen=True)
class OnnxManifest:
    """The parsed ``onnx_manifest.json`` of an export directory.

    directory: where the files are; num_samples N, horizon H, history (max k), latent_dim D,
    block_dim, image_size S: the static shapes; opset; model_hash: see :func:`model_hash`;
    files: file name -> {'sha256', 'inputs': {name: shape}, 'outputs': {name: shape}}
    (a dynamic axis is the string 'batch'); cost: the LatentCostConfig weights baked into the
    cost graphs; verification: measured errors; precision: what the graphs compute in, 'fp32'
    (the export) or 'fp16' (:mod:`lewm_ros.runtime.onnx_fp16`; inputs and outputs are float32
    in both).
    """
    directory: Path
    num_samples: int
    horizon: int
    history: int
    latent_dim: int
    block_dim: int
    image_size: int
    opset: int
    model_hash: str
    files: dict[str, dict[str, Any]]
    cost: dict[str, float]
    verification: dict[str, float]
    precision: str = 'fp32'

    @property
    def encoder_path(self) -> Path:
        return self.directory / ENCODER_FILE

    def cost_path(self, k: int) -> Path:
        if not 1 <= k <= self.history:
            raise ValueError(f'history frames k must be in [1, {self.history}], got {k}')
        return self.directory / cost_file(k)

    def predict_path(self, k: int) -> Path | None:
        """The predictor-step graph for k history frames, None when the export has none."""
        if not 1 <= k <= self.history:
            raise ValueError(f'history frames k must be in [1, {self.history}], got {k}')
        return self.directory / predict_file(k) if predict_file(k) in self.files else None

    @property
    def cost_config(self) -> LatentCostConfig:
        """The cost terms baked into the cost graphs."""
        return LatentCostConfig(**self.cost)

    def to_dict(self) -> dict[str, Any]:
        return {'format_version': MANIFEST_VERSION, 'num_samples': self.num_samples, 'horizon': self.horizon,
                'history': self.history, 'latent_dim': self.latent_dim, 'block_dim': self.block_dim,
                'image_size': self.image_size, 'opset': self.opset, 'model_hash': self.model_hash,
                'encoder_batch': 'dynamic', 'files': self.files, 'cost': self.cost,
                'verification': self.verification, 'precision': self.precision}

    @classmethod
    def load(cls, directory: str | Path) -> 'OnnxManifest':
        directory = Path(directory)
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text())
            if data.get('format_version') != MANIFEST_VERSION:
                raise ValueError(f'format_version {data.get("format_version")!r} != {MANIFEST_VERSION}')
            return cls(directory=directory, num_samples=int(data['num_samples']), horizon=int(data['horizon']),
                       history=int(data['history']), latent_dim=int(data['latent_dim']),
                       block_dim=int(data['block_dim']), image_size=int(data['image_size']),
                       opset=int(data['opset']), model_hash=str(data['model_hash']), files=dict(data['files']),
                       cost=dict(data['cost']), verification=dict(data['verification']),
                       precision=str(data.get('precision', 'fp32')))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ExportError(f'cannot read ONNX manifest {path}: {exc}') from exc

    def stale_reason(self, model_dir: str | Path, num_samples: int, horizon: int, opset: int = DEFAULT_OPSET,
                     cost: LatentCostConfig | None = None) -> str | None:
        """Why this export does not fit (model, shapes, opset, cost terms or file contents), or None."""
        if self.precision != 'fp32':
            return f'holds {self.precision} graphs (a derived variant); need the fp32 export'
        if (self.num_samples, self.horizon) != (num_samples, horizon):
            return f'exported for N={self.num_samples}, H={self.horizon}; need N={num_samples}, H={horizon}'
        if self.opset != opset:
            return f'exported with opset {self.opset}; need {opset}'
        wanted = dataclasses.asdict(cost or LatentCostConfig())
        if self.cost != wanted:
            return f'exported with cost terms {self.cost}; need {wanted}'
        current = model_hash(model_dir)
        if self.model_hash != current:
            return f'exported from model {self.model_hash[:12]}, model directory is now {current[:12]}'
        return self.files_changed()

    def files_changed(self) -> str | None:
        """Why the files on disk differ from this manifest (a missing file, another sha256), or None."""
        for name, info in self.files.items():
            paths = graph_files(self.directory, name, info)
            missing = [p for p in paths if not p.is_file()]
            if missing:
                return f'{missing[0]} is missing'
            if graph_sha256(*paths) != info['sha256']:
                return f'{paths[0]} does not match its manifest sha256'
        return None
