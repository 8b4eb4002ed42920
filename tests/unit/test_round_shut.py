"""What a round of dispatch leaves out of its candidate reads (`model.round_shut`): only tasks that
`farm_refusal` refuses, and every task a full licence, a full folder or a capped project refuses whole."""

from __future__ import annotations

import itertools

from thresher.model.dispatch_rule import (
    Candidate,
    Folder,
    Limit,
    Policy,
    Project,
    Usage,
    farm_refusal,
    folder_key,
    limit_usage_key,
    project_key,
)
from thresher.model.fit import Needs
from thresher.model.round_shut import Shut, shut, usage_keys

POLICY = Policy(projects={1: Project(1, "capped", max_cores=8, max_gpus=2), 2: Project(2, "free")},
                folders={10: Folder(10, "dailies", max_cores=4), 11: Folder(11, "open")},
                limits={"katana": Limit("katana", 3), "nuke_x": Limit("nuke_x", 5, max_per_node=1)})


def _left_out(s: Shut, c: Candidate) -> bool:
    """Whether the candidate read (`queries.dispatch.candidates`) leaves this task out."""
    cores, gpus = s.read_bounds(c.project_id, 10**6, 10**6)
    return (c.needs.cores > cores or c.needs.gpus > gpus or c.folder_id in s.folders
            or any(name in s.licences for name, _ in c.limits))


def test_what_is_left_out_is_refused_farm_wide_and_whole_refusals_are_left_out() -> None:
    candidates = [Candidate(i, 1, 1, Needs(cores, 1000, gpus), project_id=project, folder_id=folder, limits=limits)
                  for i, (cores, gpus, project, folder, limits) in enumerate(itertools.product(
                      (1, 2, 4), (0, 1), (1, 2), (None, 10, 11), ((), (("katana", 1),), (("nuke_x", 2),))))]
    for used_cores, used_gpus, in_folder, katana, nuke in itertools.product((0, 5, 8, 9), (0, 2), (0, 3, 4),
                                                                          (0, 2, 3), (0, 4, 5)):
        usage = Usage({project_key(1): [used_cores, used_gpus, 0], folder_key(10): [in_folder, 0, 0],
                       limit_usage_key("katana"): [0, 0, katana], limit_usage_key("nuke_x"): [0, 0, nuke]})
        s = shut([1, 2], POLICY, usage)
        for c in candidates:
            refused = farm_refusal(c, usage, POLICY) is not None
            if _left_out(s, c):
                assert refused, (c, usage)
            whole = (c.folder_id == 10 and in_folder >= 4) or any(
                usage.units(limit_usage_key(name)) >= POLICY.limits[name].max_total for name, _ in c.limits)
            capped = c.project_id == 1 and (used_cores + c.needs.cores > 8 or (c.needs.gpus and used_gpus + 1 > 2))
            if whole or capped:
                assert _left_out(s, c), (c, usage)


def test_a_project_with_no_core_left_is_not_read_and_the_keys_looked_at() -> None:
    usage = Usage({project_key(1): [8, 0, 0]})
    assert shut([1, 2], POLICY, usage).read_bounds(1, 8, 2) == (0, 2)
    assert shut([1, 2], POLICY, usage).read_bounds(2, 8, 2) == (8, 2)
    assert usage_keys([1, 2], POLICY) == sorted([project_key(1), folder_key(10), limit_usage_key("katana"),
                                                 limit_usage_key("nuke_x")])
