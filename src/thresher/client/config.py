"""Where a client finds its server and token, and where Thresher keeps files on this machine.

One resolution order everywhere (CLI, Python API, scripts), so a user never wonders which setting won:
explicit argument, then the environment (`THRESHER_SERVER`, `THRESHER_TOKEN`), then the saved
`client.json` that `thresher server` / `thresher up` write when they create the admin token.
`THRESHER_HOME` moves every folder under one root, which keeps tests and demos from touching the
user's real configuration.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "thresher"
DEFAULT_PORT = 8642
DEFAULT_SERVER = f"http://127.0.0.1:{DEFAULT_PORT}"
CLIENT_CONFIG_NAME = "client.json"

ENV_HOME = "THRESHER_HOME"
ENV_SERVER = "THRESHER_SERVER"
ENV_TOKEN = "THRESHER_TOKEN"


def _home() -> Path | None:
    value = os.environ.get(ENV_HOME)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Folder of the client configuration (not created here)."""
    home = _home()
    if home is not None:
        return home / "config"
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Default folder of a local farm's state: database, tokens, logs (not created here)."""
    home = _home()
    if home is not None:
        return home / "data"
    return Path(platformdirs.user_data_dir(APP_NAME))


def client_config_path() -> Path:
    return config_dir() / CLIENT_CONFIG_NAME


def load_client_config() -> dict[str, Any]:
    """The saved `{"server", "token"}`; empty when there is none or it cannot be read.

    A damaged file must not stop a user who passes `--server`/`--token` explicitly, so read
    problems yield an empty config rather than an exception.
    """
    path = client_config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_client_config(server: str, token: str) -> Path:
    """Save the server URL and token where every later client call finds them.

    The file holds an admin credential, so it is written owner-only, atomically (a reader never
    sees half a file). A `ca_file` written there by hand (client/tls.py) is kept.
    """
    path = client_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    kept = {key: value for key, value in load_client_config().items() if key == "ca_file"}  # set by hand
    payload = json.dumps({"server": server, "token": token, **kept}, indent=2) + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(payload)
    os.replace(tmp, path)
    return path


API_SUFFIX = "/api/v1"


def server_url(value: str) -> str:
    """A server as people type it (`farm:8642`, `127.0.0.1:8642`, `http://farm:8642/`) as the URL
    clients call: `http://` added when no scheme is given, no trailing slash. The API's own address,
    which `thresher up` prints (`http://127.0.0.1:8642/api/v1`), is the server's base with the API
    path after it: the path is taken off (the client adds it), where it used to be doubled into a 404."""
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    if text.lower().endswith(API_SUFFIX):
        text = text[: -len(API_SUFFIX)].rstrip("/")
    return text


@dataclass(frozen=True)
class ClientSettings:
    """The resolved connection settings, with where each came from (for error hints)."""

    server: str
    token: str | None
    server_source: str
    token_source: str


def resolve(server: str | None = None, token: str | None = None) -> ClientSettings:
    """Pick server and token: explicit argument, then environment, then client.json, then default."""
    saved: dict[str, Any] | None = None

    def from_file(key: str) -> str | None:
        nonlocal saved
        if saved is None:
            saved = load_client_config()
        value = saved.get(key)
        return value if isinstance(value, str) and value else None

    if server:
        srv, srv_src = server, "argument"
    elif os.environ.get(ENV_SERVER):
        srv, srv_src = os.environ[ENV_SERVER], ENV_SERVER
    elif (found := from_file("server")) is not None:
        srv, srv_src = found, str(client_config_path())
    else:
        srv, srv_src = DEFAULT_SERVER, "default"

    if token:
        tok, tok_src = token, "argument"
    elif os.environ.get(ENV_TOKEN):
        tok, tok_src = os.environ[ENV_TOKEN], ENV_TOKEN
    elif (found := from_file("token")) is not None:
        tok, tok_src = found, str(client_config_path())
    else:
        tok, tok_src = None, "none"
    return ClientSettings(server=server_url(srv), token=tok, server_source=srv_src, token_source=tok_src)
