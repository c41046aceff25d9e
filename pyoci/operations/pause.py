"""`pause` and `resume`: freeze and thaw every process of the container through its
cgroup (the v1 freezer or cgroup v2's cgroup.freeze). runtime-spec names the "paused"
state only in passing; pyoci follows runc: running or created containers can be paused,
only paused ones resumed, and `state` reports "paused" while the cgroup is frozen."""

from __future__ import annotations

from pyoci.errors import StateError
from pyoci.operations.common import require_cgroup
from pyoci.state import Container


def pause(root: str, cid: str) -> None:
    c = Container(root, cid)
    with c.locked():
        status = c.status()
        if status not in ("running", "created"):
            # runc's words ("container not running"), with pyoci's reason after them.
            raise StateError(f'cannot pause container "{cid}": container not running '
                             f'(it is {status})')
        require_cgroup(c).freeze()


def resume(root: str, cid: str) -> None:
    c = Container(root, cid)
    with c.locked():
        status = c.status()
        if status != "paused":
            raise StateError(f'cannot resume container "{cid}": container not paused '
                             f'(it is {status})')
        require_cgroup(c).thaw()
