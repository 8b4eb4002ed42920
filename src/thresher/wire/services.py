"""Services as admins see and change them: a name and the layer defaults it gives (`model/services.py`
holds the defaults' model and how a layer takes them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from thresher.model.services import ServiceDefaults
from thresher.wire.common import Moment
from thresher.wire.studio import Name

__all__ = ["ClearField", "Service", "ServiceCreate", "ServiceDefaults", "ServicePatch"]

ClearField = Literal["resources", "resources.cores", "resources.memory_mb", "resources.gpus", "tags", "pools",
                     "limits", "timeout", "retries"]


class Service(BaseModel):
    """A service: the defaults the layers naming it take (their own values win)."""

    name: str
    defaults: ServiceDefaults
    created_at: Moment


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceCreate(_Body):
    name: Name
    defaults: ServiceDefaults = Field(default_factory=ServiceDefaults)


class ServicePatch(_Body):
    """The defaults given replace those the service had (resources figure by figure); those in `clear` go."""

    defaults: ServiceDefaults = Field(default_factory=ServiceDefaults)
    clear: list[ClearField] = Field(default_factory=list, max_length=20)
