"""What a dry run answers: the tasks and commands a checked spec would create, without writing anything."""

from __future__ import annotations

from typing import Any

from thresher.model.checked import CheckedJob
from thresher.templates.base import Target

#: The most tasks a dry run lists (it says how many more there are).
DRY_RUN_TASKS = 1000


def dry_run(job: CheckedJob, limit: int = DRY_RUN_TASKS, target_os: str = "linux") -> dict[str, Any]:
    """The tasks and commands of a checked job, as a node of `target_os` with the templates' default
    executables would run them: the first `limit` tasks, layer by layer, and the job's warnings."""
    listed: list[dict[str, Any]] = []
    target = Target(os=target_os)
    for checked in job.layers:
        for chunk in checked.chunks():
            if len(listed) >= limit:
                break
            line = checked.template.build(checked.args, chunk, target, job.spec.path_mapping)
            item = {"layer": checked.spec.name, "index": chunk.index, "frames": chunk.frames,
                    "argv": line.argv, "shell": line.shell, "outputs": line.outputs[:20]}
            if chunk.part:
                item["part"] = chunk.part
            listed.append(item)
    warnings = list(job.warnings)
    if job.task_count > limit:
        warnings.append(f"showing the first {limit} of {job.task_count:,} tasks")
    layers = [{"name": layer.name, "service": layer.service, **layer.resources.model_dump(), "tags": layer.tags,
               "pools": layer.pools, "limits": layer.limits, "timeout": layer.timeout, "retries": layer.retries,
               "scout_frames": checked.scout_frames, "scout_release": layer.scout_release if layer.scout else None}
              for checked, layer in ((checked, checked.spec) for checked in job.layers)]
    return {"valid": True, "errors": [], "warnings": warnings, "total_tasks": job.task_count, "tasks": listed,
            "layers": layers}
