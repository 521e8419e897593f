"""On-disk cache of serialised TensorRT engines (pure Python: no TensorRT import).

A TensorRT engine is only valid for the GPU model, compute capability and TensorRT version
that built it, and for the exact network it was built from. The cache key therefore holds
all four (plus the precision): a new driver-visible GPU, a TensorRT upgrade or a re-exported
ONNX file each select a fresh file, and a stale engine is never deserialised.

Layout: ``<root>/<stem>-<gpu slug>-sm<major><minor>-trt<version>-<digest16>.engine`` beside a
``.json`` sidecar holding the key and the sha256 of the engine bytes. A sidecar that is
missing, unreadable, for another key, or whose checksum disagrees with the engine bytes makes
the entry invalid: ``load`` logs the reason and returns None so the caller rebuilds.

The same root holds the ONNX files derived from a model (:func:`derived_onnx_dir`): exports
for planning batches a model directory does not ship, and FP16 variants of exports.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lewm_ros.validation import check_choice, check_int, require

_LOG = logging.getLogger(__name__)

#: Environment variable that overrides the default cache root.
CACHE_ENV = 'LEWM_ENGINE_CACHE'
PRECISIONS = ('fp16', 'fp32')
#: The build recipe of today's engines: 1 = weakly typed network with builder precision flags
#: (TensorRT 10 only), 2 = strongly typed network from an ONNX file typed for the precision.
ENGINE_RECIPE = 2


def default_cache_root() -> Path:
    """``$LEWM_ENGINE_CACHE`` if set, else ``$XDG_CACHE_HOME/lewm_ros/engines`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'lewm_ros' / 'engines'


def derived_onnx_dir(root: str | Path | None, model_hash: str, name: str) -> Path:
    """``<root>/onnx/<model_hash[:16]>/<name>``: ONNX files derived from a model (planning
    batches it does not ship, FP16 variants) live in the cache beside the engines, never in the
    model directory. root: the cache root (None: :func:`default_cache_root`)."""
    base = Path(root) if root is not None else default_cache_root()
    return base / 'onnx' / model_hash[:16] / name


def _slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-') or 'unknown'


@dataclass(frozen=True)
class EngineKey:
    """What a serialised engine depends on.

    gpu_name: CUDA device name (``torch.cuda.get_device_name``); compute_capability: (major,
    minor); tensorrt_version: ``tensorrt.__version__``; onnx_sha256: hex sha256 of the source
    ONNX file; precision: 'fp16' or 'fp32' (builder flags); max_batch: the largest batch of
    the optimisation profile of a dynamic-batch network (0: static shapes, no profile);
    recipe: version of this package's build recipe (:data:`ENGINE_RECIPE`: network flags and
    builder settings), so an engine built the old way is never reused.
    """
    gpu_name: str
    compute_capability: tuple[int, int]
    tensorrt_version: str
    onnx_sha256: str
    precision: str = 'fp16'
    max_batch: int = 0
    recipe: int = ENGINE_RECIPE

    def __post_init__(self) -> None:
        require(isinstance(self.gpu_name, str) and bool(self.gpu_name), 'EngineKey.gpu_name', self.gpu_name,
                'a non-empty string')
        cc = tuple(self.compute_capability)
        require(len(cc) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cc),
                'EngineKey.compute_capability', cc, '(major, minor) integers >= 0')
        object.__setattr__(self, 'compute_capability', cc)
        require(isinstance(self.tensorrt_version, str)
                and re.fullmatch(r'\d+(\.\d+)*([.\-+][0-9A-Za-z.]+)?', self.tensorrt_version) is not None,
                'EngineKey.tensorrt_version', self.tensorrt_version, 'a version like "10.3.0"')
        require(isinstance(self.onnx_sha256, str) and re.fullmatch(r'[0-9a-f]{64}', self.onnx_sha256) is not None,
                'EngineKey.onnx_sha256', self.onnx_sha256, '64 lowercase hex digits')
        check_choice('EngineKey.precision', self.precision, PRECISIONS)
        check_int('EngineKey.max_batch', self.max_batch, 0)
        check_int('EngineKey.recipe', self.recipe, 1)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['compute_capability'] = list(self.compute_capability)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> 'EngineKey':
        return cls(gpu_name=data['gpu_name'], compute_capability=tuple(data['compute_capability']),
                   tensorrt_version=data['tensorrt_version'], onnx_sha256=data['onnx_sha256'],
                   precision=data['precision'], max_batch=data['max_batch'], recipe=data.get('recipe', 1))

    def digest(self) -> str:
        """Hex sha256 of the canonical JSON of the key (stable across processes)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def filename(self, stem: str) -> str:
        """Engine file name for the network ``stem`` (e.g. 'encoder', 'rollout_cost_k3')."""
        major, minor = self.compute_capability
        return (f'{_slug(stem)}-{_slug(self.gpu_name)}-sm{major}{minor}-trt{_slug(self.tensorrt_version)}'
                f'-{self.precision}-{self.digest()[:16]}.engine')


class EngineCache:
    """Directory of engines keyed by :class:`EngineKey`; writes are atomic (tmp + rename)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()

    def path_for(self, stem: str, key: EngineKey) -> Path:
        return self.root / key.filename(stem)

    @staticmethod
    def sidecar_for(engine_path: Path) -> Path:
        return engine_path.with_suffix('.json')

    def load(self, stem: str, key: EngineKey) -> bytes | None:
        """Engine bytes for (stem, key), or None (logged) when absent, corrupt or mismatched."""
        path = self.path_for(stem, key)
        if not path.is_file():
            _LOG.info('no cached TensorRT engine %s: building', path)
            return None
        sidecar = self.sidecar_for(path)
        try:
            meta = json.loads(sidecar.read_text())
            stored_key = EngineKey.from_dict(meta['key'])
            expected_sha = meta['engine_sha256']
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _LOG.warning('cached engine %s has no valid sidecar %s (%s): rebuilding', path, sidecar, exc)
            return None
        if stored_key != key:
            _LOG.warning('cached engine %s was built for %s, need %s: rebuilding', path, stored_key, key)
            return None
        data = path.read_bytes()
        actual_sha = hashlib.sha256(data).hexdigest()
        if actual_sha != expected_sha:
            _LOG.warning('cached engine %s is corrupt (sha256 %s, sidecar says %s): rebuilding',
                         path, actual_sha[:12], expected_sha[:12])
            return None
        return data

    def store(self, stem: str, key: EngineKey, data: bytes) -> Path:
        """Write engine bytes and their sidecar; returns the engine path."""
        if not data:
            raise ValueError(f'refusing to cache an empty engine for {stem!r}')
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path_for(stem, key)
        sidecar = self.sidecar_for(path)
        meta = {'stem': stem, 'key': key.to_dict(), 'engine_sha256': hashlib.sha256(data).hexdigest(),
                'engine_bytes': len(data)}
        for target, payload in ((path, data), (sidecar, (json.dumps(meta, indent=2) + '\n').encode())):
            tmp = target.with_name(target.name + f'.tmp{os.getpid()}')
            tmp.write_bytes(payload)
            tmp.replace(target)
        _LOG.info('cached TensorRT engine %s (%d bytes)', path, len(data))
        return path

    def invalidate(self, stem: str, key: EngineKey, reason: str) -> None:
        """Delete an entry that failed to deserialise, with a log line naming the reason."""
        path = self.path_for(stem, key)
        _LOG.warning('discarding cached engine %s: %s', path, reason)
        for target in (path, self.sidecar_for(path)):
            target.unlink(missing_ok=True)
