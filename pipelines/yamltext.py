"""YAML that people write (the config, the topics): parse errors as one line a person can act on."""

from __future__ import annotations

from typing import Any

import yaml


class YamlProblem(ValueError):
    """Not valid YAML: ``where`` is ``line N`` (or empty when unknown), the message is the problem."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where = where


def parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlProblem(where, str(problem)) from None
