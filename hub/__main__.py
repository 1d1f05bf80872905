"""`python -m hub`: the same command line as `hub`."""

import sys

from hub.composition.cli import main

if __name__ == "__main__":
    sys.exit(main())
