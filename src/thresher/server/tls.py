"""HTTPS for the server (`--tls-cert FILE --tls-key FILE`): the pair checked before anything starts.

uvicorn loads the files itself when it starts serving, after the database was opened and migrated, and
says what went wrong with a traceback. Loading them here first turns a missing, unreadable or mismatched
file into one line a person can act on (`main.StartupError`)."""

from __future__ import annotations

import ssl
from pathlib import Path


def tls_problem(cert: Path, key: Path) -> str | None:
    """Why this certificate and key cannot serve HTTPS, or None."""
    for what, path, flag in (("certificate", cert, "--tls-cert"), ("private key", key, "--tls-key")):
        try:
            with open(path, "rb") as fh:
                text = fh.read()
        except FileNotFoundError:
            return f"the TLS {what} {path} does not exist; check {flag}"
        except IsADirectoryError:
            return f"the TLS {what} {path} is a folder, not a PEM file; check {flag}"
        except OSError as exc:
            return f"cannot read the TLS {what} {path}: {exc.strerror or exc}; check {flag} and the file's permissions"
        if b"-----BEGIN" not in text:
            return f"the TLS {what} {path} is not a PEM file (no '-----BEGIN' line); check {flag}"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(exc).upper():
            return f"the TLS private key {key} does not belong to the certificate {cert}"
        return f"cannot use the TLS certificate {cert} with the key {key}: {reason}"
    except (OSError, ValueError) as exc:  # an encrypted key asks for a password we do not have
        return f"cannot use the TLS certificate {cert} with the key {key}: {exc} (the key must not be encrypted)"
    return None
