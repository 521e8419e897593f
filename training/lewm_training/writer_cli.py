"""The end of a dataset writer's command (import-bag, convert): its outcome as an exit status."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class WriterReport(Protocol):
    def lines(self) -> list[str]: ...


def run_writer(write: Callable[[], WriterReport], out: str | Path, log: logging.Logger) -> int:
    """Run ``write``; 0 with its summary lines when the dataset is complete, 2 with the reason for
    bad input (a ValueError names it), 130 on Ctrl-C (complete shards are kept: a re-run resumes)."""
    try:
        report = write()
    except ValueError as exc:
        log.error('%s', exc)
        return 2
    except KeyboardInterrupt:
        log.warning('interrupted: complete shards are kept; re-run the same command to resume')
        return 130
    for line in report.lines():
        log.info('%s', line)
    log.info('dataset complete: %s', out)
    return 0
