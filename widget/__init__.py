"""The embeddable chat widget (plain JS, no build step) and the demo page."""

from pathlib import Path

WIDGET_DIR = Path(__file__).parent
