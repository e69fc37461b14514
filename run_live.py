"""Entry point: `python run_live.py [options]` (also installed as the `livefusion` command)."""

from __future__ import annotations

import sys


def main() -> int:
    from livefusion.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
