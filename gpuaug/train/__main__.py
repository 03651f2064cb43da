"""``python -m gpuaug.train [train|eval] ...`` (``train`` when the first word is neither)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
