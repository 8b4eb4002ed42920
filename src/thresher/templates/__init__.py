"""Templates are plug-ins: each is a class registered under the `thresher.templates` entry point.

A studio ships its own templates in its own package by declaring, in its pyproject.toml,
`[project.entry-points."thresher.templates"] mytool = "studio_templates.mytool:MyToolTemplate"`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from thresher.model.problems import did_you_mean
from thresher.templates.base import CommandLine, Template

__all__ = ["CommandLine", "Template", "UnknownTemplate", "all_templates", "get_template"]


class UnknownTemplate(LookupError):
    pass


@lru_cache(maxsize=1)
def all_templates() -> dict[str, Template]:
    """Every installed template by name, loaded once per process."""
    found: dict[str, Template] = {}
    for entry in entry_points(group="thresher.templates"):
        template_class = entry.load()
        found[entry.name] = template_class()
    if "command" not in found:  # running from a source tree without installed metadata
        from thresher.templates.command import CommandTemplate

        found["command"] = CommandTemplate()
    return dict(sorted(found.items()))


def get_template(name: str) -> Template:
    try:
        return all_templates()[name]
    except KeyError:
        known = ", ".join(all_templates())
        raise UnknownTemplate(f"unknown template {name!r}{did_you_mean(name, all_templates())}; "
                              f"installed templates: {known}") from None
