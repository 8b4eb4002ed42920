"""The nodes page's slice of the farm: filtered by a chip (busy, down, ...) or a name, in pages.

A farm of 2,000 busy nodes made the page 3 MB and 300 ms, fetched again at every live refresh of
every open tab; a page of `PAGE_SIZE` nodes keeps it small. It reads the farm summary's node list,
shared by all tabs (`events/farm_summary.py`), so a filter or a page costs no database read; the chips
keep counting the whole farm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

from thresher.model.node_chips import NODE_CHIPS, name_holds
from thresher.server.events.farm_summary import node_is

PAGE_SIZE = 100


@dataclass(frozen=True)
class NodeFilter:
    state: str = ""   # one of NODE_CHIPS, or "" for every node
    name: str = ""    # a part of the node's name or host name, any case
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, str]) -> NodeFilter:
        """From the page's query; what it cannot use (an unknown state, a page that is no number) filters
        nothing, as on the jobs page."""
        state = params.get("state") or ""
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        return cls(state=state if state in NODE_CHIPS else "", name=(params.get("name") or "").strip(), page=page)

    def matches(self, node: dict[str, Any]) -> bool:
        return (not self.state or node_is(node, self.state)) and name_holds(self.name, node["name"], node.get("hostname"))

    def link(self, **change: Any) -> str:
        """This page's address with some of the filter changed (a new filter goes back to page 1)."""
        merged = {"state": self.state, "name": self.name, "page": self.page, **change}
        parts = [f"{k}={quote(str(v), safe='')}" for k, v in merged.items() if v and not (k == "page" and v == 1)]
        return "/nodes" + ("?" + "&".join(parts) if parts else "")


@dataclass(frozen=True)
class NodePage:
    nodes: list[dict[str, Any]]
    matched: int   # nodes the filter keeps, over every page
    page: int      # the page shown (the last one when asked past the end)
    pages: int


def page_of(node_list: list[dict[str, Any]], f: NodeFilter) -> NodePage:
    """The nodes of the filter's page, in the summary's order (by name)."""
    kept = [node for node in node_list if f.matches(node)]
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(f.page, pages)
    return NodePage(kept[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], len(kept), page, pages)
