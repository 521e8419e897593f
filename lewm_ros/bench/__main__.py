"""``python -m lewm_ros.bench``: the same as ``lewm-bench``."""
import sys

from lewm_ros.bench.cli import main

sys.exit(main())
