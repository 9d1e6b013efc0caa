"""`python -m benchmarks` (from the repository root): the benchmark suite, see benchmarks/suite.py."""

import sys
from pathlib import Path

# The scripts in benchmarks/ import each other by bare name (`from common import ...`), as when run directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # noqa: E402

main()
