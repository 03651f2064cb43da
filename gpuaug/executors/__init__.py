"""Executors: apply a sampled plan to a batch. ``cpu`` (numpy) and ``cuda`` (CUDA kernels)
give identical results for the same plan."""
