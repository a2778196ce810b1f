#!/usr/bin/env python
"""Same as `safeeraser bench`: our configurations against the reference's way (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safeeraser.bench.command import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
