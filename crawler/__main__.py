"""``python -m crawler`` is ``borderwatch``."""

from crawler.cli.main import entry

entry()
