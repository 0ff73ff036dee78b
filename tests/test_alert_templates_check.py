"""``alerts.templates`` is checked when the config is loaded: a missing folder or a template that fails to
render is a configuration error (exit 2) naming the key, the file and the line — for every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import bw_here, write_config

from crawler.config import ConfigError, load_config

SHIPPED = Path(__file__).resolve().parent.parent / "alerts" / "templates"


def _config(tmp_path: Path, templates: str, **extra: object) -> Path:
    return write_config(tmp_path / "bw.yaml", {
        "database": f"sqlite:///{tmp_path / 'bw.db'}",
        "sources": [{"name": "feed", "kind": "feed", "url": "http://127.0.0.1:9/feed"}],
        "watchers": [{"name": "desk", "notify": ["json://127.0.0.1:9/hook"]}],
        "alerts": {"templates": templates},
        **extra,
    })


# (files written into the folder, what the one-line error must contain)
CASES = [
    ({"new.html.j2": "<p>{{ alert.title }</p>\n"}, ["new.html.j2, line 1", "TemplateSyntaxError"]),
    ({"new.md.j2": "*{{ alert.title }}*\n\n{{ alert.headline }}\n"},
     ["new.md.j2, line 3", "UndefinedError", "headline", "rendering a new-story alert as markdown"]),
    ({"digest.txt.j2": "{% for g in groups %}\n{{ g.stories | nosuchfilter }}\n{% endfor %}\n"},
     ["digest.txt.j2, line 2", "nosuchfilter"]),
    ({"health.html.j2": "{% include 'missing_part.html.j2' %}\n"}, ["missing_part.html.j2 not found"]),
    ({"subject.txt.j2": "{{ 1 / 0 }}\n"}, ["subject.txt.j2, line 1", "ZeroDivisionError"]),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_a_broken_template_is_a_config_error_naming_file_and_line(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, str(folder)))
    message = str(caught.value)
    assert "\n" not in message and "alerts.templates: " in message
    for part in expected:
        assert part in message, message


def test_a_missing_folder_or_a_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.templates: no such folder: .*/nope$"):
        load_config(_config(tmp_path, str(tmp_path / "nope")))
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.templates: not a folder: .*/file$"):
        load_config(_config(tmp_path, str(tmp_path / "file")))


def test_a_good_override_folder_loads(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "new.txt.j2").write_text((SHIPPED / "new.txt.j2").read_text(encoding="utf-8") + "\n-- our desk\n",
                                       encoding="utf-8")
    assert load_config(_config(tmp_path, str(folder))).alerts.templates == str(folder)


@pytest.mark.parametrize("command", [["crawl"], ["run"], ["alerts", "send"], ["alerts", "test", "desk"],
                                     ["alerts", "list"], ["status"]])
def test_every_command_refuses_a_broken_template_with_exit_2(tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "update.html.j2").write_text("<p>\n{{ story.title | upper }\n</p>\n", encoding="utf-8")
    proc = bw_here(_config(tmp_path, str(folder)), *command)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines[0].endswith("update.html.j2, line 2: TemplateSyntaxError: unexpected '}' "
                             "(rendering an update alert as html)"), proc.stderr
    assert "alerts.templates" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
