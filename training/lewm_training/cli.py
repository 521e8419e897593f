"""``lewm-train``: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported lazily so ``lewm-train collect`` does not import torch
training code and vice versa.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMANDS = {
    'collect': ('lewm_training.collect', 'collect episodes from a MuJoCo task into an HDF5 dataset'),
    'import-bag': ('lewm_training.bag_import', "import a robot's rosbag2 recordings (MCAP/sqlite3) into a dataset"),
    'convert': ('lewm_training.swm_convert', "convert a stable-worldmodel HDF5 file (the authors' datasets)"),
    'fit': ('lewm_training.fit', 'train a LeWM model on a dataset (resumable, DDP-aware)'),
    'fit-policy': ('lewm_training.policy_fit', "goal-conditioned policy on a model's frozen latents (hindsight)"),
    'eval': ('lewm_training.evaluate', "closed-loop success rate under the paper's protocol"),
    'eval-snapshots': ('lewm_training.eval_snapshots', 'success against training steps from fit --keep-snapshots'),
    'probe': ('lewm_training.probe', 'linear probe from latent to physical state'),
    'surprise': ('lewm_training.surprise', 'prediction error on normal vs perturbed trajectories'),
    'surprise-eval': ('lewm_training.surprise_eval', 'surprise monitor: fault detection rate and delay, false alarms'),
    'export': ('lewm_training.export', 'export encoder / predictor step to ONNX, checked with ONNX Runtime'),
}


def build_parser() -> argparse.ArgumentParser:
    """Parser with every subcommand registered (imports each subcommand module)."""
    parser = argparse.ArgumentParser(prog='lewm-train', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        # Import only the requested subcommand (fast start, fewer dependencies).
        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        parser = argparse.ArgumentParser(prog=f'lewm-train {argv[0]}', description=module.__doc__)
        module.add_arguments(parser)
        return int(module.run(parser.parse_args(argv[1:])) or 0)
    build_parser().parse_args(argv)
    return 2


if __name__ == '__main__':
    sys.exit(main())
