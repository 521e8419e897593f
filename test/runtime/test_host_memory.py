"""reuse_freed_memory: large temporaries stop landing on fresh pages (counted, not timed)."""
import subprocess
import sys

import pytest

_COUNT_FAULTS = r'''
import resource, sys
import torch
from lewm_ros.runtime.host_memory import reuse_freed_memory

def faults_per_alloc(reps=20):
    torch.empty(4 << 20).fill_(1.0)      # 16 MB, first touch
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(reps):
        torch.empty(4 << 20).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / reps

default = faults_per_alloc()
applied = reuse_freed_memory()
print(default, faults_per_alloc(), applied, reuse_freed_memory())
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='mallopt is glibc (Linux) only')
def test_large_temporaries_reuse_pages_after_the_setting():
    # A fresh process: the setting is process-wide and cannot be undone.
    out = subprocess.run([sys.executable, '-c', _COUNT_FAULTS], capture_output=True, text=True, check=True)
    default, reused, applied, again = out.stdout.split()
    assert applied == 'True' and again == 'True'
    # glibc default: a 16 MB block lands on fresh pages each time (measured here: 1,200 faults per
    # block); transparent huge pages ('always') would make that a handful, hence the floor of 50.
    assert float(reused) < max(float(default) / 20, 50.0), out.stdout
