"""What a refused API call must look like: its status and, for bad input, the field it names."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from thresher.client.http import ApiError


def refused(call: Callable[[], Any], status: int, field: str | None = None) -> ApiError:
    """Make the call, expect an ApiError with this status (naming `field` among its errors when given)."""
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status, (info.value.status, info.value.detail, info.value.errors)
    if field is not None:
        assert field in [e["field"] for e in info.value.errors], info.value.errors
    return info.value
