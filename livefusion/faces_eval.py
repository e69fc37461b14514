"""Old entry point, kept for one release: use `python -m livefusion.measure.faces_eval`."""

import sys

from livefusion.measure.faces_eval import main

if __name__ == "__main__":
    sys.exit(main())
