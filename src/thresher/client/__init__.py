"""The Python API of Thresher: `from thresher.client import Thresher`.

`Thresher()` connects to the server and token of the environment or the saved client config
(`client/config.py`); every method answers the wire models of `thresher.wire`.
"""

from thresher.client.api import Thresher
from thresher.client.http import ApiError, ServerUnreachable

__all__ = ["ApiError", "ServerUnreachable", "Thresher"]
