"""Write docs/configuration.md from the settings models: `python scripts/gen_config_docs.py`.

`SECTIONS` lists each process's TOML section and settings model.
tests/unit/test_config.py fails when the page in the repository is not what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from thresher.agent.settings import AgentSettings
from thresher.config import DOCS_PATH, write_config_docs
from thresher.server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[1]

SECTIONS: list[tuple[str, type[BaseSettings]]] = [
    ("server", ServerSettings),
    ("agent", AgentSettings),
]


def main() -> int:
    path = ROOT / DOCS_PATH
    changed = write_config_docs(path, SECTIONS)
    print(f"{path.relative_to(ROOT)}: {'written' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
