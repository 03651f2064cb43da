"""gpuaug benchmarks: ``python -m bench --suite augment|roofline|loader|train|all --size smoke|full``.

``main(argv)`` is the entry point (``gpuaug bench ...`` forwards to it); ``run_suites`` runs
suites programmatically and returns (result dict, JSON path). See bench/README.md.
"""

from .cli import main, run_suites

__all__ = ["main", "run_suites"]
