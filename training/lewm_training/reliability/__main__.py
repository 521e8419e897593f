"""Run one reliability check: its JSON line, its summary, exit status 0 when the figure holds.

python -m lewm_training.reliability <check> [options]; the checks: see the package docstring."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lewm_training.reliability.common import ros_environment

CHECKS = {'fuzz': 'fuzz', 'stall': 'stall', 'faults': 'faults', 'model-safety': 'model_safety',
          'resume': 'resume', 'soak': 'soak'}


def main(argv: list[str] | None = None) -> int:
    ros_environment()
    parser = argparse.ArgumentParser(prog='python -m lewm_training.reliability', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='check', required=True)
    modules = {}
    for name, module_name in CHECKS.items():
        module = importlib.import_module(f'lewm_training.reliability.{module_name}')
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='[%(levelname)s] [%(name)s]: %(message)s')
    result = modules[args.check].run(args)
    result.emit()
    return 0 if result.passed else 1


if __name__ == '__main__':
    sys.exit(main())
