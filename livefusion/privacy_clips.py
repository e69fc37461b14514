"""Old entry point, kept for one release: use `python -m livefusion.measure.privacy_clips`."""

import sys

from livefusion.measure.privacy_clips import main

if __name__ == "__main__":
    sys.exit(main())
