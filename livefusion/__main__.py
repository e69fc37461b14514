"""`python -m livefusion [options]`: the same as the `livefusion` command and `run_live.py`."""

import sys

from livefusion.cli import main

sys.exit(main())
