#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
BENCH_PROFILE=1: where the instructions of `make bench` go, by function.

Usage: profile.py <lane> <console log> <window prefix>

bench/kgprof.c (the QEMU plugin) writes one file <window prefix>.<k> per
successful run of kvmbench or vhostbench: the instructions run in each of
the run's two timed runs (windows), by code address. A run commits its file
only after every check passed, just before it prints its result, and
guest.sh prints a BENCH line exactly when the program succeeded; so file k
belongs to the k-th BENCH line of the console, and a failed run (BENCH-ERROR)
has neither. Each file is also checked against its BENCH line: the windows'
instructions per round trip must match the timed ones.

As the bench does with the times, the per-function numbers are the
difference between the two windows (N and N/8 frames, or N and 1 round
trips) divided by the difference in iterations. Addresses are named by the
test host's kallsyms (guest.sh prints them, BENCH-KSYM blocks, kvmguard's
and ftrace's trampolines for each configuration): the nearest
text symbol at or below, "(user space)" for user addresses (with
kvmbench, also the bench VM's own code). Prints, for every workload, each
configuration's mean over the rounds against (a): the functions whose
difference is at least 1 instruction per round trip, and what kvmguard's own
code (kallsyms module [kvmguard]) runs.
Exit status 1 when a run has no usable profile.
"""
import bisect
import os
import re
import sys

USER_TOP = 0xffff800000000000    # x86-64: kernel addresses are above
PAGE = 4096                      # an ftrace trampoline takes whole pages
SHOW_MIN = 1.0                   # smallest difference shown, per round trip
MAX_SKEW = 1.5                   # profile - timed, per round trip, at most
CONFIGS = "abcdefg"
UNIT = {"hypercall": "round trip", "pio": "round trip",
        "memslot": "create + delete pair"}

BENCH = re.compile(r"^BENCH (\S+) ([a-g]) (\S+) (\d+) ([0-9.]+) (\d+) (\d+) (\d+)$")
KSYM_BEGIN = re.compile(r"^BENCH-KSYM-BEGIN (\S+) (\d+) (\S+)$")
SYM = re.compile(r"^([0-9a-f]{16}) [tTwW] (\S+)(?:\s+\[(\S+)\])?$")


def unit(workload):
    return UNIT.get(workload, "frame")


def read_console(path):
    """BENCH lines in console order, and the symbols of each round."""
    runs, syms, block = [], {}, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if block is not None:
                if line.startswith("BENCH-KSYM-END"):
                    block = None
                    continue
                m = SYM.match(line)
                if m:
                    block.append((int(m.group(1), 16), m.group(2), m.group(3)))
                continue
            m = KSYM_BEGIN.match(line)
            if m:
                block = syms.setdefault((int(m.group(2)), m.group(3)), [])
                continue
            m = BENCH.match(line)
            if m:
                runs.append({"config": m.group(2), "workload": m.group(3),
                             "round": int(m.group(4)), "per": float(m.group(5)),
                             "times": (int(m.group(7)), int(m.group(6))),
                             "n": int(m.group(8))})
    return runs, syms


# Printed again before each configuration with kvmguard loaded.
PER_CONFIG = ("kvmguard", "__builtin__ftrace")


class Symbols:
    """Round 0's symbols (all of them) with those of the run's configuration
    in its round: kvmguard's and ftrace's trampolines."""

    def __init__(self, syms):
        self.syms = syms
        self.tables = {}

    def table(self, rnd, config):
        key = (rnd, config)
        if key not in self.tables:
            entries = [s for s in self.syms.get((0, "-"), []) if s[2] not in PER_CONFIG]
            entries += [s for s in self.syms.get(key, []) if s[2] in PER_CONFIG]
            # A trampoline's page may be the module's freed init code,
            # whose symbols stay listed (kvmguard_init): not theirs now.
            pages = [s[0] for s in entries if s[2] == "__builtin__ftrace"]
            entries = [s for s in entries if s[2] == "__builtin__ftrace" or
                       not any(0 < s[0] - t < PAGE for t in pages)]
            entries.sort()
            self.tables[key] = ([e[0] for e in entries], entries)
        return self.tables[key]

    def name(self, rnd, config, addr):
        if addr < USER_TOP:
            return "(user space)", None
        addrs, entries = self.table(rnd, config)
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            return "(unknown)", None
        _, name, module = entries[i]
        return (f"{name} [{module}]" if module else name), module


def read_windows(path):
    """[(instructions, idle events, {address: instructions})] per window."""
    windows, lost = {}, 0
    with open(path) as f:
        for line in f:
            p = line.split()
            if p[0] == "lost":
                lost = int(p[1])
            elif p[0] == "window":
                windows[int(p[1])] = (int(p[2]), int(p[3]), {})
            else:
                windows[int(p[0])][2][int(p[1], 16)] = int(p[2])
    if lost:
        raise ValueError(f"{lost} windows lost")
    return [windows[w] for w in sorted(windows)]


def profile_run(run, path, symbols, problems):
    """Instructions per round trip by function, or None."""
    label = f"{run['config']} {run['workload']} round {run['round']}"
    if not os.path.exists(path):
        problems.append(f"{label}: no profile ({path} missing)")
        return None
    try:
        windows = read_windows(path)
    except (OSError, ValueError, IndexError, KeyError) as e:
        problems.append(f"{label}: {path}: {e}")
        return None
    if len(windows) != 2:
        problems.append(f"{label}: {path}: {len(windows)} windows, not 2")
        return None
    n = run["n"]
    trips = n - n // 8 if run["workload"].startswith("vhost-") else n - 1
    per = (windows[1][0] - windows[0][0]) / trips
    # The windows' difference is the timed one (1 ns = 1 instruction), but
    # for the bench VM's vmmcall or out: reached, so counted by the plugin,
    # but intercepted, so not by icount (+1 a round trip; bench/kgprof.c).
    timed = (run["times"][1] - run["times"][0]) / trips
    if abs(per - timed) > MAX_SKEW:
        problems.append(f"{label}: {path}: {per:.2f} instructions per {unit(run['workload'])}"
                        f", timed {timed:.2f}: not this run's profile")
        return None
    if windows[0][1] or windows[1][1]:
        problems.append(f"{label}: the vCPU idled in a timed run "
                        "(its time is not its instruction count)")
    funcs, own = {}, 0.0
    for w, sign in ((1, 1), (0, -1)):
        for addr, count in windows[w][2].items():
            name, module = symbols.name(run["round"], run["config"], addr)
            x = sign * count / trips
            funcs[name] = funcs.get(name, 0.0) + x
            if module == "kvmguard":
                own += x
    return {"total": per, "bench": run["per"], "funcs": funcs, "own": own}


def mean(profiles):
    out = {"total": 0.0, "bench": 0.0, "own": 0.0, "funcs": {}}
    for p in profiles:
        for k in ("total", "bench", "own"):
            out[k] += p[k] / len(profiles)
        for name, x in p["funcs"].items():
            out["funcs"][name] = out["funcs"].get(name, 0.0) + x / len(profiles)
    return out


def report(lane, workload, by_config):
    u = unit(workload)
    print(f"{lane} {workload}: instructions per {u} (mean of the rounds), and by function"
          f" where a configuration differs from a by {SHOW_MIN:g} or more:")
    base = by_config.get("a")
    for c in CONFIGS:
        p = by_config.get(c)
        if p is None:
            continue
        head = f"  {c}: {p['total']:.1f} (bench {p['bench']:.1f})"
        if base is not None and c != "a":
            head += f", {p['total'] - base['total']:+.1f} against a"
        print(f"{head}; kvmguard's own code: {p['own']:.1f} instructions per {u}")
        if base is None or c == "a":
            continue
        names = set(p["funcs"]) | set(base["funcs"])
        rows = [(p["funcs"].get(k, 0.0) - base["funcs"].get(k, 0.0), k) for k in names]
        rows = sorted((r for r in rows if abs(r[0]) >= SHOW_MIN), key=lambda r: (-r[0], r[1]))
        if rows:
            print(f"    {'a':>9} {c:>9} {'diff':>8}  function")
        for diff, name in rows:
            print(f"    {base['funcs'].get(name, 0.0):9.1f} {p['funcs'].get(name, 0.0):9.1f}"
                  f" {diff:+8.1f}  {name}")
    print()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: profile.py <lane> <console log> <window prefix>")
    lane, log, prefix = sys.argv[1:]
    runs, syms = read_console(log)
    problems = []
    if (0, "-") not in syms:
        problems.append("no kernel symbols in the console (BENCH-KSYM-BEGIN ... 0 -)")
    files = 0
    while os.path.exists(f"{prefix}.{files}"):
        files += 1
    if files != len(runs):
        problems.append(f"{files} profiles for {len(runs)} BENCH lines")
    symbols = Symbols(syms)
    profiles, workloads = {}, []
    for k, run in enumerate(runs):
        p = profile_run(run, f"{prefix}.{k}", symbols, problems)
        if run["workload"] not in workloads:
            workloads.append(run["workload"])
        if p is not None:
            profiles.setdefault((run["workload"], run["config"]), []).append(p)
    means = {key: mean(v) for key, v in profiles.items()}
    for w in workloads:
        report(lane, w, {c: means[(w, c)] for c in CONFIGS if (w, c) in means})
    print(f"{lane}: kvmguard's own code, instructions per frame (vhost-*), round trip"
          " (hypercall, pio) or memslot pair:")
    print("  " + " ".join(f"{x:<9}" for x in ["workload"] + list(CONFIGS)))
    for w in workloads:
        cells = [f"{means[(w, c)]['own']:.1f}" if (w, c) in means else "-" for c in CONFIGS]
        print("  " + " ".join(f"{x:<9}" for x in [w] + cells))
    for p in problems:
        print(f"profile: {lane}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
