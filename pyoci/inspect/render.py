"""The readable table and the --compare-host marks of `pyoci inspect`.

A report is flattened to lines (section, field, text, value compared, what decides the
mark). Marks (docs/inspect.md): a line backed by a namespace (identity: user; mounts: mnt;
hostname: uts; network: net; each namespace line itself) is "isolated" when the process's
namespace differs from the host's (pid 1), "shared" when it is the same one, whatever the
values look like (two loopbacks with 127.0.0.1 are still two). A per-process value
(capabilities, seccomp, no_new_privs, LSM label, cgroup, limits, rlimits, oom_score_adj)
is "shared" when it equals the host's, "isolated" when it differs.

Every string a container controls (command line, mount points, interface names, hostname,
cgroup names) is printed with control characters escaped: the table is for a terminal.
"""

from __future__ import annotations

from typing import Any

Line = tuple[str, str, str, object, str | None]


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _size(value: int | None) -> str:
    if value is None:
        return "unlimited"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << (shift - 4)) == 0:
            return f"{value / (1 << shift):g} {unit}"
    return f"{value} B"


def _caps(entry: dict[str, Any]) -> str:
    names, missing = entry["names"], entry["missing"]
    short = [n.removeprefix("CAP_").lower() for n in names]
    if not missing:
        return "all (full root set)"
    if not names:
        return "none"
    if len(missing) < len(names):
        drop = ", ".join(n.removeprefix("CAP_").lower() for n in missing)
        return f"all but {len(missing)}: -{drop.replace(', ', ', -')}"
    return ", ".join(short)


def _ids(entry: dict[str, Any]) -> str:
    eff = entry.get("effective") or entry.get("real") or {}
    inside = eff.get("inside")
    inside_text = "unmapped" if inside is None else str(inside)
    return f"{inside_text} inside, {eff.get('host')} on the host"


def lines(proc: dict[str, Any]) -> list[Line]:
    out: list[Line] = []
    head = f"{proc['pid']} on the host"
    if len(proc["pidInNamespaces"]) > 1:
        head += f", {proc['pidInNamespaces'][-1]} inside"
    out.append(("process", "pid", head, None, "pid"))
    out.append(("process", "command", _clean(" ".join(proc["command"]) or proc["name"]),
                None, "-"))
    for ns in proc["namespaces"]:
        text = f"{ns['type']}:[{ns['inode']}]"
        if ns["sharedWithHost"]:
            text += " (host's)"
        elif ns["sharedWithRuntime"]:
            text += " (runtime's)"
        out.append(("namespaces", ns["type"], text, ns["inode"], ns["type"]))
    ident = proc["identity"]
    out.append(("identity", "uid", _ids(ident["uid"]), ident["uid"], "user"))
    out.append(("identity", "gid", _ids(ident["gid"]), ident["gid"], "user"))
    groups = ", ".join(f"{g['inside'] if g['inside'] is not None else 'unmapped'}"
                       f"({g['host']})" for g in ident["groups"]) or "none"
    out.append(("identity", "groups", groups, ident["groups"], "user"))
    for key in ("uidMap", "gidMap"):
        text = "; ".join(f"{a} -> {b} ({c})" for a, b, c in ident[key]) or "none"
        out.append(("identity", key, text, ident[key], "user"))
    for name, entry in proc["capabilities"]["sets"].items():
        out.append(("capabilities", name, _caps(entry), entry["hex"], None))
    sec = proc["security"]
    sc = sec["seccomp"]
    text = sc["mode"] + (f", {sc['filters']} filter(s)" if sc["filters"] else "")
    out.append(("security", "seccomp", text, (sc["mode"], sc["filters"]), None))
    out.append(("security", "no_new_privs", str(sec["noNewPrivs"]).lower(),
                sec["noNewPrivs"], None))
    lsm = sec["lsm"]
    out.append(("security", "lsm", (f"{','.join(lsm['active'])}: " if lsm["active"]
                                    else "no LSM active")
                + (_clean(lsm["label"]) if lsm["label"] else ""), lsm["label"], None))
    cg = proc["cgroup"]
    for h in cg["hierarchies"]:
        key = ",".join(h["controllers"]) if h["version"] == 1 else "unified"
        out.append(("cgroup", key, _clean(h["path"]), h["path"], None))
    lim = cg["limits"]
    if "memory" in lim:
        m = lim["memory"]
        text = f"limit {_size(m['limit'])}"
        if m["effectiveLimit"] != m["limit"]:
            origin = _clean(str(m["effectiveFrom"]))
            text += f" (effective {_size(m['effectiveLimit'])} from {origin})"
        text += f", usage {_size(m['usage'])}"
        out.append(("limits", "memory", text, m["effectiveLimit"], None))
    if "cpu" in lim:
        c = lim["cpu"]
        text = "unlimited" if c["cpus"] is None else f"{c['cpus']:g} CPUs"
        if c["effectiveCpus"] != c["cpus"]:
            text += f" (effective {c['effectiveCpus']:g} from {_clean(str(c['effectiveFrom']))})"
        if c["usageNs"] is not None:
            text += f", used {c['usageNs'] / 1e9:.3f} s"
        out.append(("limits", "cpu", text, c["effectiveCpus"], None))
    if "cpuset" in lim:
        out.append(("limits", "cpuset", f"cpus {lim['cpuset']['effectiveCpus']}, mems "
                    f"{lim['cpuset']['effectiveMems']}", lim["cpuset"]["effectiveCpus"], None))
    if "pids" in lim:
        p = lim["pids"]
        text = f"limit {p['limit'] if p['limit'] is not None else 'unlimited'}"
        if p["effectiveLimit"] != p["limit"]:
            text += f" (effective {p['effectiveLimit']} from {_clean(str(p['effectiveFrom']))})"
        text += f", current {p['current'] if p['current'] is not None else '?'}"
        out.append(("limits", "pids", text, p["effectiveLimit"], None))
    if "devices" in lim:
        rules = lim["devices"]["rules"]
        text = ("eBPF program (not shown by cgroupfs)" if rules is None
                else "; ".join(rules) or "none allowed")
        out.append(("limits", "devices", text, rules, None))
    mounts = proc["mounts"]
    root = mounts["root"]
    where = root.get("hostPath") or f"not mounted in the reader's namespace " \
                                   f"({root.get('source')}:{root.get('fsRoot')})"
    text = (f"{_clean(where)} ({root.get('fstype')}, "
            f"{'ro' if root.get('readonly') else 'rw'}, {root.get('propagation')})")
    out.append(("mounts", "root", text, root.get("hostPath"), "mnt"))
    out.append(("mounts", "count", str(mounts["count"]), mounts["count"], "mnt"))
    out.append(("mounts", "masked", _clean(", ".join(mounts["maskedPaths"])) or "none",
                mounts["maskedPaths"], "mnt"))
    out.append(("mounts", "readonly", _clean(", ".join(mounts["readonlyPaths"])) or "none",
                mounts["readonlyPaths"], "mnt"))
    props = sorted({m["propagation"] for m in mounts["table"]})
    out.append(("mounts", "propagation", ", ".join(props), props, "mnt"))
    for r in proc["rlimits"]:
        def v(x: int | None) -> str:
            return "unlimited" if x is None else str(x)
        out.append(("rlimits", r["name"].removeprefix("RLIMIT_").lower(),
                    f"{v(r['soft'])} / {v(r['hard'])}", (r["soft"], r["hard"]), None))
    uts = proc["uts"]
    note = {"kernel": "", "config": " (from config.json: the kernel shows it only inside)",
            "unavailable": ""}[uts["source"]]
    for key in ("hostname", "domainname"):
        value = uts[key]
        if value:
            text = _clean(value) + note
        elif value == "":
            text = "(empty)"
        elif uts["source"] == "config":
            text = "not in config.json (a new UTS namespace starts with its creator's)"
        else:
            text = "not readable from outside its UTS namespace"
        out.append(("uts", key, text, value, "uts"))
    out.append(("oom", "score_adj", str(proc["oom"]["scoreAdj"]), proc["oom"]["scoreAdj"],
                None))
    for i in proc["network"]["interfaces"]:
        addrs = ", ".join(i["ipv4"] + i["ipv6"]) or "no address"
        out.append(("network", _clean(i["name"]),
                    f"{_clean(addrs)}; rx {i['rxBytes']} B, tx {i['txBytes']} B",
                    None, "net"))
    return out


def _ns_marks(proc: dict[str, Any]) -> dict[str, bool | None]:
    return {ns["type"]: ns["sharedWithHost"] for ns in proc["namespaces"]}


def comparison(proc: dict[str, Any], host: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per line of ``proc``: its text, the host's (pid 1), and the mark."""
    shared = _ns_marks(proc)
    host_lines = {(s, f): (t, v) for s, f, t, v, _d in lines(host)}
    rows = []
    for section, field, text, value, dep in lines(proc):
        host_text, host_value = host_lines.get((section, field), ("", None))
        if dep in ("pid", "-"):
            mark = "isolated" if dep == "pid" and len(proc["pidInNamespaces"]) > 1 \
                else "shared" if dep == "pid" else ""
        elif dep is not None:
            same = shared.get(dep)
            mark = "" if same is None else "shared" if same else "isolated"
        else:
            mark = "shared" if (section, field) in host_lines and value == host_value \
                else "isolated"
        rows.append({"pid": proc["pid"], "section": section, "field": field,
                     "container": text, "host": host_text, "mark": mark})
    return rows


#: A value wider than this pushes the host's value (last column) onto a line of its own.
WIDE = 56


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    widths[-1] = min(widths[-1], WIDE) if len(rows[0]) > 2 else widths[-1]
    out = []
    for r in rows:
        cells = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
        if len(rows[0]) > 2 and len(r[-2]) > WIDE and r[-1]:
            out += [(indent + cells).rstrip(),
                    indent + " " * (sum(widths[:-1]) + 2 * (len(widths) - 1)) + r[-1]]
        else:
            out.append((indent + cells + "  " + r[-1]).rstrip())
    return out


def render_table(report: dict[str, Any]) -> str:
    """The default output: one block per process, one line per field, sections apart;
    with --compare-host the host's value and the mark beside each."""
    out: list[str] = []
    c = report.get("container")
    if c:
        out.append(f"container {_clean(c['id'])} ({c['status']}), bundle {_clean(c['bundle'])}")
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for row in report.get("comparison") or []:
        by_pid.setdefault(row["pid"], []).append(row)
    for proc in report["processes"]:
        out.append(f"process {proc['pid']} ({_clean(proc['name'])})")
        rows = by_pid.get(proc["pid"])
        if rows is None:
            rows = [{"section": s, "field": f, "container": t} for s, f, t, _v, _d in lines(proc)]
        blocks: list[tuple[str, list[list[str]]]] = []
        for r in rows:
            if not blocks or blocks[-1][0] != r["section"]:
                blocks.append((r["section"], []))
            if "mark" in r:
                blocks[-1][1].append([r["field"], r["mark"] or "-", r["container"],
                                      f"| host: {r['host']}"
                                      if r["host"] != r["container"] else ""])
            else:
                blocks[-1][1].append([r["field"], r["container"]])
        for section, block in blocks:
            out.append(f" {section.upper()}")
            out.extend(_table(block))
    return "\n".join(out) + "\n"
