"""A studio adds its own template in its own package, through the `thresher.templates` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
from pydantic import BaseModel
from thresher.templates.base import CommandLine, Template


class StudioArgs(BaseModel):
    scene: str


class StudioTemplate(Template):
    name = "studio"
    description = "the studio's in-house renderer"
    Args = StudioArgs

    def command(self, args, chunk):
        return CommandLine(argv=["studio-render", args.scene, str(chunk.start), str(chunk.end)])
'''


def test_an_installed_plugin_is_found_and_used(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "studio_templates").mkdir(parents=True)
    (site / "studio_templates" / "__init__.py").write_text(PLUGIN)
    dist = site / "studio_templates-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-templates\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[thresher.templates]\nstudio = studio_templates:StudioTemplate\n")
    probe = textwrap.dedent('''
        import json
        from thresher.model.frames import iter_chunks
        from thresher.model.dry_run import dry_run
        from thresher.server.submit import check_spec
        spec = {"name": "j", "layers": [{"name": "l", "template": "studio", "frames": "1-4", "chunk": 2,
                                          "args": {"scene": "/shows/a.scn"}}]}
        print(json.dumps(dry_run(check_spec(spec))["tasks"]))
    ''')
    out = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    tasks = json.loads(out.stdout)
    assert [t["argv"] for t in tasks] == [["studio-render", "/shows/a.scn", "1", "2"],
                                          ["studio-render", "/shows/a.scn", "3", "4"]]
