"""The OpenAPI document is whole: every schema it refers to is in it (Swagger UI and ReDoc at /docs and
/redoc render it; a dangling reference leaves the job spec's form empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from thresher.server.app import create_app
from thresher.server.main import prepare


def test_every_reference_resolves_and_the_job_spec_is_described(tmp_path: Path) -> None:
    server = prepare(None, tmp_path)
    try:
        document = create_app(server).openapi()
    finally:
        server.db.dispose()
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and not refs - set(schemas)
    assert "$defs" not in text
    body = document["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/JobSpec"
    assert {"name", "layers"} <= set(schemas["JobSpec"]["properties"])
