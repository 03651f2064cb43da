"""CUDA C sources of gpuaug's kernels (package data, compiled at run time with NVRTC)."""
