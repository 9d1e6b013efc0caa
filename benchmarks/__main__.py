"""`python -m benchmarks` (from the repository root): the benchmark suite, see benchmarks/suite.py."""

from .suite import main

main()
