"""Data files: find them, check them, cache the verdicts, and the built-in data.

The bottom layer (imports nothing else of gpuaug); loaders and the trainer build on it.

- :mod:`.datafiles`   ImageFolder trees and '<path> <label>' lists -> ``Samples``, with the skip policy
- :mod:`.decodecheck` strict full-decode check of images in worker processes
- :mod:`.checkcache`  on-disk cache of the verdicts, one file per data root
- :mod:`.imagesize`   the pixel-count limit every loader applies
- :mod:`.cifarfile`   CIFAR-10/100 pickles read without running code from them
- :mod:`.samples`     built-in procedural sample pictures (no downloads)
- :mod:`.cachedir`    where gpuaug caches what it computes once (``~/.cache/gpuaug``)
"""
