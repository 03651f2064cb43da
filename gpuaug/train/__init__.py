"""A thin trainer for gpuaug's methods: ``gpuaug train`` / ``gpuaug eval``
(``python -m gpuaug.train [train|eval] ...``).

Modules: cli (options, recipes), loop (training), losses (CE, JSD), noisymix (model-side
noisy feature mixup), models, schedule, checkpoint, distributed (torchrun/DDP), data
(the loader factory and the CPU loader), evaluate (clean, calibration, corruptions,
ImageNet-R/-A), synthetic (the built-in shapes data set), recipes (TOML), argtypes
(range-checked options), outputs (atomic files, the metrics log), signals (graceful stop).
"""

from .cli import main_eval, main_train

__all__ = ["main_train", "main_eval"]
