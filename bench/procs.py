"""What the benchmark reads about its processes: peak resident memory of a process group."""

import os
from pathlib import Path


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which may itself hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def peak_rss_mib(pgid: int, *, exclude_leader: bool = False) -> float:
    """The largest peak RSS (VmHWM) among the live processes of group `pgid`, in MiB."""
    peak = 0
    for pid in _group_members(pgid):
        if exclude_leader and pid == pgid:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return round(peak / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int, *, exclude_leader: bool = False) -> float:
    """CPU seconds used so far by the live processes of group `pgid`."""
    total = 0.0
    for pid in _group_members(pgid):
        if exclude_leader and pid == pgid:
            continue
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def settle(pgid: int, *, exclude_leader: bool = False, limit: float = 120.0) -> None:
    """Wait until group `pgid` is idle (under 10% of a core), e.g. a backlog is worked off."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = group_cpu_seconds(pgid, exclude_leader=exclude_leader)
        time.sleep(0.3)
        if group_cpu_seconds(pgid, exclude_leader=exclude_leader) - before < 0.03:
            return
