"""Old entry point, kept for one release: use `python -m livefusion.measure.synthclip`."""

import sys

from livefusion.measure.synthclip import main

if __name__ == "__main__":
    sys.exit(main())
