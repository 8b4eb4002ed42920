"""How clients check a Thresher server's TLS certificate, and what they say when it fails.

Every client (CLI, Python API, agent, tests) goes through `client/http.HttpClient`, which asks here for
its `verify`: the CA file it was given, else `$THRESHER_CA_FILE`, else the saved client config's
`ca_file`, else the usual public CAs. A server on a private CA (README: TLS) is trusted only through
that file; nothing here turns verification off.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

ENV_CA_FILE = "THRESHER_CA_FILE"


class TlsProblem(Exception):
    """A TLS connection cannot be made for a reason a person must fix (a CA file, a certificate)."""


def ca_file_in_use(ca_file: str | Path | None) -> str | None:
    """The CA file a client uses: the given one, `$THRESHER_CA_FILE`, or the saved config's `ca_file`."""
    if ca_file:
        return str(ca_file)
    if os.environ.get(ENV_CA_FILE):
        return os.environ[ENV_CA_FILE]
    from thresher.client.config import load_client_config

    saved = load_client_config().get("ca_file")
    return saved if isinstance(saved, str) and saved else None


def verify_for(ca_file: str | Path | None) -> ssl.SSLContext | bool:
    """What httpx's `verify` gets: a context trusting the CA file in use, or True (the public CAs)."""
    path = ca_file_in_use(ca_file)
    if path is None:
        return True
    try:
        return ssl.create_default_context(cafile=os.path.expanduser(path))
    except FileNotFoundError:
        raise TlsProblem(f"the CA file {path} does not exist; check --ca-file or ${ENV_CA_FILE}") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsProblem(f"cannot use the CA file {path}: {getattr(exc, 'strerror', None) or exc}; it must be "
                         "a readable PEM file of the CA certificate(s) that signed the server's") from None


def explain(exc: BaseException, server: str, ca_file: str | Path | None) -> str | None:
    """What a failed connection's TLS error means for the user, or None when it was no TLS error."""
    seen: BaseException | None = exc
    chain: list[BaseException] = []
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain)
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = getattr(verify, "verify_message", None) or "certificate verify failed"
        used = ca_file_in_use(ca_file)
        hint = (f"the CA file {used} does not vouch for it (is it the CA that signed the server's certificate, "
                "and does the certificate name this host?)" if used else
                f"if a private CA signed it, pass that CA's certificate with --ca-file FILE or set ${ENV_CA_FILE}")
        return f"cannot verify the TLS certificate of {server}: {reason}; {hint}"
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return (f"{server} does not answer TLS (is it a plain HTTP server? then use http:// in the URL, or start "
                "the server with --tls-cert and --tls-key)")
    if server.startswith("http://") and "disconnected without sending" in text:
        return (f"{server} closed the connection without an answer; if it serves HTTPS (--tls-cert), use "
                "https:// in the URL")
    return None
