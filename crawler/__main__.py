"""``python -m crawler`` is ``borderwatch``."""

from crawler.cli import entry

entry()
