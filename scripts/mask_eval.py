"""Coverage and paint of the blend masks on the shared portraits (see livefusion/measure/mask_eval.py).

    /work/main/.venv/bin/python scripts/mask_eval.py [--crops /tmp/mask_crops] [--shared ../shared]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livefusion.measure.mask_eval import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
