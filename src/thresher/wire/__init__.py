"""The wire contract: pydantic models of every request and response body of the HTTP API.

One set of models, read by everyone who speaks the protocol: the server builds its answers from them
(and FastAPI writes the OpenAPI document at `/openapi.json` from them), the Python client and the CLI
parse answers with them, the agent's calls are described by `wire.agent`. No I/O here, no server
imports: a client installs and imports these without the server's dependencies.

Modules by resource: `common` (problems, pages), `jobs` (jobs, layers, tasks, attempts, logs, dry
runs), `nodes`, `meta` (health, who am I, templates), `agent` (the agents' calls).
"""
