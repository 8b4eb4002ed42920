"""What this node has (cores, memory, GPUs, names) and how busy it is right now.

Facts are sent once at registration, load figures with every heartbeat. GPU detection goes through
NVML (`nvidia-ml-py`): a node without NVIDIA drivers simply has no GPUs, which is never an error,
so that one agent build runs on every machine of a farm.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import psutil

log = logging.getLogger(__name__)

MIB = 1024 * 1024


@dataclass
class GpuInfo:
    """One GPU as the server sees it; `index` is what CUDA_VISIBLE_DEVICES names."""

    index: int
    name: str
    memory_mb: int
    uuid: str  # "" when unknown

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "memory_mb": self.memory_mb, "uuid": self.uuid}


@dataclass
class NodeFacts:
    """The registration facts of a node (the body of `POST /agent/register` minus instance_id)."""

    name: str
    hostname: str
    os: str
    cores: int
    memory_mb: int
    gpus: list[GpuInfo] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    physical_gpus: int = 0  # what NVML found, even when the operator declared fewer
    apps: dict[str, str] = field(default_factory=dict)  # application name -> executable on this node
    mac: str | None = None  # the hardware address of its first network interface (inventory, wake-on-LAN)
    pool: str | None = None  # the pool it serves; None keeps what the server has

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": self.hostname,
            "os": self.os,
            "cores": self.cores,
            "memory_mb": self.memory_mb,
            "gpus": [g.to_json() for g in self.gpus],
            "tags": list(self.tags),
            "apps": dict(self.apps),
            "mac": self.mac,
            **({"pool": self.pool} if self.pool else {}),
        }


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def detect_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs through NVML; an empty list when the library or driver is missing or fails."""
    try:
        import pynvml
    except Exception:  # the package itself is missing: no GPUs
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver / library: a CPU-only node
        log.debug("NVML unavailable (%s): no GPUs", exc)
        return []
    gpus: list[GpuInfo] = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = _text(pynvml.nvmlDeviceGetName(handle))
                memory_mb = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // MIB)
                try:
                    uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
                except Exception:
                    uuid = ""
                gpus.append(GpuInfo(index=i, name=name, memory_mb=memory_mb, uuid=uuid))
            except Exception as exc:
                log.warning("GPU %d could not be read through NVML: %s", i, exc)
    except Exception as exc:
        log.warning("NVML failed while listing GPUs: %s", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return gpus


def default_name() -> str:
    """The node name when none is given: the short host name (what wranglers recognise)."""
    return socket.gethostname().split(".")[0] or "node"


def detect_apps(declared: dict[str, str] | None = None) -> dict[str, str]:
    """Where this node's applications are: `python` is the agent's own interpreter (the tools tasks run,
    like the tile stitcher, need Thresher), then `THRESHER_APP_<NAME>=path` environment variables, then
    the `--app NAME=PATH` options. Templates fall back to their per-OS defaults for the rest."""
    apps = {"python": sys.executable} if sys.executable else {}
    for key, value in os.environ.items():
        if key.startswith("THRESHER_APP_") and value:
            apps[key[len("THRESHER_APP_"):].lower()] = value
    apps.update(declared or {})
    return apps


def detect_facts(*, name: str | None = None, cores: int | None = None, memory_mb: int | None = None,
                 gpus: int | None = None, tags: list[str] | None = None,
                 apps: dict[str, str] | None = None, pool: str | None = None) -> NodeFacts:
    """Detect the node's facts; explicit values override detection (e.g. to lend only part of a
    workstation to the farm at night).

    `gpus=N` keeps the first N detected GPUs. Asking for more than NVML found adds placeholder GPUs
    (name "virtual"); that lets tests and simulations exercise GPU scheduling on CPU-only machines.
    """
    detected = detect_gpus()
    gpu_list = list(detected)
    if gpus is not None:
        if gpus < 0:
            raise ValueError("gpus must be >= 0")
        gpu_list = gpu_list[:gpus]
        for i in range(len(gpu_list), gpus):
            gpu_list.append(GpuInfo(index=i, name="virtual", memory_mb=0, uuid=""))
        if gpus > len(detected):
            log.warning("declared %d GPUs but NVML found %d: the rest are placeholders", gpus, len(detected))
    if cores is not None and cores < 1:
        raise ValueError("cores must be >= 1")
    if memory_mb is not None and memory_mb < 1:
        raise ValueError("memory_mb must be >= 1")
    return NodeFacts(
        name=name or default_name(),
        hostname=socket.gethostname(),
        os=platform.system().lower() or os.name,
        cores=cores if cores is not None else (psutil.cpu_count(logical=True) or os.cpu_count() or 1),
        memory_mb=memory_mb if memory_mb is not None else int(psutil.virtual_memory().total // MIB),
        gpus=gpu_list,
        tags=[t for t in (tags or []) if t],
        physical_gpus=len(detected),
        apps=detect_apps(apps),
        mac=detect_mac(),
        pool=pool,
    )


def detect_mac() -> str | None:
    """The MAC address of the node's first physical-looking network interface (by name, loopback and
    all-zero addresses left out), as `aa:bb:cc:dd:ee:ff`; None when there is none to read."""
    try:
        interfaces = psutil.net_if_addrs()
    except (OSError, RuntimeError):
        return None
    for name in sorted(interfaces):
        for address in interfaces[name]:
            mac = (address.address or "").lower().replace("-", ":")
            if address.family == psutil.AF_LINK and _MAC.fullmatch(mac) and mac != "00:00:00:00:00:00":
                return mac
    return None


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def total_memory_mb() -> float:
    """The node's RAM in MB (what the memory guard's default floor is a share of)."""
    return psutil.virtual_memory().total / MIB


def sample_load() -> dict[str, Any]:
    """Current node load for the heartbeat: `cpu_percent` (since the previous call), memory, 1-min load."""
    vm = psutil.virtual_memory()
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows
        load = 0.0
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_used_mb": int((vm.total - vm.available) // MIB),
        "load": float(load),
    }
