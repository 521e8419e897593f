"""``lewm-engine``: export and build TensorRT engines ahead of time (e.g. once on a Jetson).

``lewm-engine build --model-dir D [--samples N] [--horizon H] [--cache DIR]`` finds or exports
verified ONNX (the model directory's shipped ``onnx/n{N}_h{H}`` when it fits, else an export in
the cache; ``--onnx-dir`` to choose), then builds and caches one engine per graph (for fp16 from
the export's FP16 variant, also in the cache). Nothing is written into the model directory.
Exporting needs torch; on a robot without it (``lewm_ros[robot-trt]``) the export must exist.
Without TensorRT 10/11 or a GPU it still exports and verifies the ONNX, then exits with status
3 and a message naming what is missing. Builds log their progress (every ~10 s).
"""
from __future__ import annotations

import argparse
import logging
import sys

_LOG = logging.getLogger(__name__)

EXIT_NO_TENSORRT = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='lewm-engine', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    build = sub.add_parser('build', help='export ONNX and build + cache TensorRT engines')
    build.add_argument('--model-dir', required=True, help='model directory (config.json + weights)')
    build.add_argument('--samples', type=int, default=300, help='CEM samples N (static engine shape; default 300)')
    build.add_argument('--horizon', type=int, default=5, help='planning horizon H [blocks] (default 5)')
    build.add_argument('--onnx-dir', default=None,
                       help='ONNX export directory (default: the shipped <model-dir>/onnx/n{N}_h{H} when it fits, '
                            'else one in the cache)')
    build.add_argument('--cache', default=None,
                       help='engine cache directory, also for derived ONNX (default $LEWM_ENGINE_CACHE or '
                            '~/.cache/lewm_ros/engines)')
    build.add_argument('--precision', choices=('fp16', 'fp32'), default='fp16', help='engine precision')
    build.add_argument('--device', default='cuda', help="CUDA device (default 'cuda')")
    build.add_argument('--encoder-max-batch', type=int, default=2, help='largest encode batch (default 2)')
    build.add_argument('--workspace-mb', type=int, default=None, help='builder workspace cap [MiB]')
    return parser


def build(args: argparse.Namespace) -> int:
    from lewm_ros.model.model_dir import CheckpointError
    from lewm_ros.runtime.onnx_exports import resolve_export
    from lewm_ros.runtime.onnx_manifest import ExportError
    from lewm_ros.runtime.tensorrt_backend import EngineBuilder, build_engines

    try:
        manifest = resolve_export(args.model_dir, args.samples, args.horizon, args.onnx_dir, cache_root=args.cache)
    except (CheckpointError, ExportError, ValueError) as exc:
        _LOG.error('ONNX export failed: %s', exc)
        return 1
    _LOG.info('ONNX export verified in %s: %s', manifest.directory,
              ', '.join(f'{k}={v:.2g}' for k, v in manifest.verification.items()))
    try:
        builder = EngineBuilder(args.device, args.cache, args.precision,
                                None if args.workspace_mb is None else args.workspace_mb << 20)
    except (ImportError, ValueError) as exc:
        _LOG.error('ONNX exported and verified, but no TensorRT engines were built: %s', exc)
        return EXIT_NO_TENSORRT
    try:
        source = builder.source(manifest)
    except (ExportError, ValueError) as exc:
        _LOG.error('no %s ONNX to build from: %s', args.precision, exc)
        return 1
    engines = build_engines(source, builder, args.encoder_max_batch)
    for name in engines:
        _LOG.info('engine ready: %s', name)
    _LOG.info('%d engines cached in %s', len(engines), builder.cache.root)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    args = build_parser().parse_args(argv)
    try:
        return build(args)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
