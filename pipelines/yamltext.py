"""YAML that people write (the config, the topics): parse errors as one line a person can act on.

Aliases are checked before a document is built: a small file whose aliases expand to millions of nodes
("billion laughs") or refer to themselves is refused, not walked until memory runs out.
"""

from __future__ import annotations

from typing import Any

import yaml

# Nodes a document may expand to, counting every alias as a full copy of what it names. The config and
# the topics files hold a few thousand; a bomb of 9 levels of 10 aliases holds a billion.
MAX_NODES = 200_000


class YamlProblem(ValueError):
    """Not valid YAML: ``where`` is ``line N`` (or empty when unknown), the message is the problem."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where = where


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for once aliases are expanded (memoised: linear in the file)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise YamlProblem(_line(node), "an alias refers to the node that contains it")
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            open_.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            for child in children:
                total += size(child)
                if total > MAX_NODES:
                    raise YamlProblem(_line(node), f"the document expands to more than {MAX_NODES:,} values "
                                                   "(aliases used as a bomb?)")
            open_.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}" if node.start_mark is not None else ""


def parse_yaml(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlProblem(where, str(problem)) from None
    except RecursionError:
        raise YamlProblem("", "nested too deeply") from None
    finally:
        loader.dispose()
