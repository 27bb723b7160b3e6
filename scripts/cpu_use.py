#!/usr/bin/env python3
"""CPU use by process group over a window, from /proc (for make bench's mixed run).

`cpu_use.py snapshot FILE` records every process's CPU time and each core's busy time; `cpu_use.py diff BEFORE
AFTER` prints JSON: the window's length in seconds, seconds of CPU per group (redirect, shortener, idgen, postgres, redis, zookeeper, loadtest,
other), each core's busy share and the whole machine's. A group is a process's name (postgres's backends, its
checkpointer and WAL writer all count as postgres); a process born inside the window counts whole, one that
ended inside it is not counted, so the window should not stop services.
"""
import json
import os
import sys

GROUPS = {"redirect": "redirect", "shortener": "shortener", "idgen": "idgen", "postgres": "postgres",
          "redis-server": "redis", "java": "zookeeper", "loadtest": "loadtest"}
TICK = os.sysconf("SC_CLK_TCK")


def processes():
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # utime and stime are fields 14 and 15 of stat(5); fields here start at field 3.
        # starttime (field 22) tells a process from a later one with the same PID (kernel threads rename themselves).
        seen[pid] = {"name": name, "cpu": (int(fields[11]) + int(fields[12])) / TICK, "start": fields[19]}
    return seen


def cores():
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                name, *values = line.split()
                values = [int(v) for v in values]
                idle = values[3] + values[4]  # idle + iowait
                busy[name] = {"busy": (sum(values[:8]) - idle) / TICK, "total": sum(values[:8]) / TICK}
    return busy


def snapshot(path):
    with open(path, "w") as f:
        with open("/proc/uptime") as uptime:
            at = float(uptime.read().split()[0])
        json.dump({"at": at, "processes": processes(), "cores": cores()}, f)


def diff(before_path, after_path):
    before, after = (json.load(open(p)) for p in (before_path, after_path))
    groups = {}
    for pid, p in after["processes"].items():
        b = before["processes"].get(pid)
        spent = p["cpu"] - b["cpu"] if b is not None and b["start"] == p["start"] else p["cpu"]
        group = GROUPS.get(p["name"], "other")
        groups[group] = round(groups.get(group, 0) + spent, 3)
    busy = {}
    for name, c in after["cores"].items():
        b = before["cores"][name]
        total = c["total"] - b["total"]
        busy[name] = round((c["busy"] - b["busy"]) / total, 3) if total else 0
    seconds = round(after["at"] - before["at"], 2)
    print(json.dumps({"seconds": seconds, "cpu_seconds": groups, "busy": busy}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
