"""Process memory setting for CPU planning: reuse freed memory instead of fresh pages (no ROS).

glibc's malloc serves a large block (above a threshold that adapts between 128 KiB and 32 MiB)
with its own ``mmap`` and hands freed heap tops back to the kernel. A rollout allocates large
temporaries at every step (paper predictor, 300 candidates: a (900, 2048) fp32 activation is
7 MB, the AdaLN modulations of 300 x 5 candidate blocks 41 MB), so with the defaults each of them
lands on fresh pages that the kernel zero-fills on first touch. Measured on the 2-core development
machine, one paper-budget costs call (300 x H 5, three history frames): 77,000-94,000 minor page
faults and 620-650 ms; with :func:`reuse_freed_memory` 300 page faults (2,300 from a non-main
thread, as in the planner node) and 510-550 ms. ONNX Runtime and TensorRT keep their own arenas;
the torch backend on CPU and the CEM sampling around every backend allocate through malloc.

The cost is memory: the process keeps its peak heap (a few hundred MB for the paper preset)
instead of returning it to the system between plans, the usual trade for a real-time process.
"""
from __future__ import annotations

import ctypes
import logging
import threading

_LOG = logging.getLogger(__name__)

#: mallopt parameter numbers (glibc <malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Blocks up to this size [bytes] come from the heap and are reused after free (glibc default: 128 KiB,
#: adapting up to 32 MiB, below the 41 MB modulation block of the paper budget).
MMAP_THRESHOLD_BYTES = 256 << 20
#: Free memory at the heap top [bytes] kept before it is returned to the kernel (glibc default: 128 KiB).
TRIM_THRESHOLD_BYTES = 1 << 30

_lock = threading.Lock()
_result: bool | None = None


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (process-wide, once; later calls return the first
    result). Returns True when set; False on a C library without ``mallopt`` (musl, macOS) or if
    glibc refused a value, and then allocation behaves as before (slower, never wrong)."""
    global _result
    with _lock:
        if _result is None:
            _result = _apply()
        return _result


def _apply() -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        _LOG.info('no glibc mallopt in this process: large CPU temporaries stay on fresh pages')
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    if applied:
        _LOG.info('malloc: blocks up to %d MiB from the heap, freed memory kept up to %d MiB',
                 MMAP_THRESHOLD_BYTES >> 20, TRIM_THRESHOLD_BYTES >> 20)
    else:
        _LOG.warning('glibc refused the malloc thresholds: large CPU temporaries stay on fresh pages')
    return applied
