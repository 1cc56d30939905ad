#!/usr/bin/python3
"""The soak test's table and verdict from its samples (tests/soak/soak.sh).

soak_report.py SAMPLES --cpus N --clk-tck HZ --cpu-limit PCT --agents N

SAMPLES has tab-separated lines: P t name pid rss_kib fds threads cpu_ticks anon_kib
db_bytes | D t db_bytes wal_bytes | Z t pid ppid comm | X t name pid. Prints the table,
then one "PROBLEM: ..." line per failure; exits 1 when there is one.

Growth that does not level off: the run is cut into thirds by time; the first is
warm-up. A series fails when its level over the last third is above its level over the
middle third by more than the margin (margin()). The level of a third is its
second-highest sample, a value the process held in at least two samples: a leak keeps
raising it third after third, while a moment caught by one sample does not count. Such
moments are real: an agent maps its flow tables (2 x 65 536 x 152 bytes by default) for
the instant it reads them, and a sample that catches it reads 20 MB more RSS (41 MB
against 22 MB, once in 1 820 samples of the first 30-minute run); an agent's fds were
53 + 3 in one sample, twice in the second.
Memory is judged on anonymous RSS (heap and stacks: where a leak lives) and on RSS.
SQLite's page cache is heap too, up to 2000 KiB per connection by default, and fills as
the database grows from empty, as every database in the soak does: the collector's
anonymous RSS went from 4.7 to 6.1 MB over the last third of the second 30-minute run,
while its database grew from 0.7 to 2.1 MB, the two rising together; a collector on a
23 MB database sent 20 000 small reports grew 2.5 -> 5.6 MB over the first 10 000, as
its page cache filled, and stayed there over the next 10 000. So memory may also grow by as much as the process's database grew over the same
thirds, up to that cache limit (docs/testing.md, "Soak test").
CPU% is of the whole machine: CPU time / (wall time x CPUs); the mean is over the whole
sampled run, the maximum over one sampling interval.
"""
import argparse
import collections
import sys

KIB = 1024


SQLITE_CACHE_KIB = 2000  # SQLite's default cache_size (-2000), per connection


def level(values):
    """The second-highest value: held in at least two samples."""
    return sorted(values)[-2] if len(values) > 1 else max(values)


def margin(metric, mid_level, agents, is_collector, db_growth_kib=0):
    """How far the last third's level may go above the middle third's."""
    if metric in ("rss", "anon"):  # KiB: allocator noise, and the page cache following the database
        return max(1024, mid_level * 0.02) + min(SQLITE_CACHE_KIB, max(0, db_growth_kib))
    if metric == "wal":  # bytes: the WAL is a high-water mark between checkpoints
        return max(1024 * KIB, mid_level * 0.10)
    # fds, threads: a connection and its handler per agent may be in flight at the collector
    return 2 + (agents if is_collector else 0)


def thirds(series, t_end):
    """(middle, last) thirds of [(t, value)] by time."""
    a, b = t_end / 3, 2 * t_end / 3
    return [v for t, v in series if a <= t < b], [v for t, v in series if t >= b]


def human_kib(k):
    return f"{k / 1024:.1f}M"


def human_bytes(b):
    return f"{b / KIB / KIB:.2f}M"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("samples")
    p.add_argument("--cpus", type=int, required=True)
    p.add_argument("--clk-tck", type=int, required=True)
    p.add_argument("--cpu-limit", type=float, required=True)
    p.add_argument("--agents", type=int, required=True)
    args = p.parse_args()

    procs = collections.OrderedDict()  # name -> [(t, pid, rss, fds, threads, ticks)]
    db, zombies, gone = [], [], {}
    for line in open(args.samples):
        f = line.rstrip("\n").split("\t")
        if f[0] == "P":
            procs.setdefault(f[2], []).append((float(f[1]), f[3], *map(int, f[4:10])))
        elif f[0] == "D":
            db.append((float(f[1]), int(f[2]), int(f[3])))
        elif f[0] == "Z":
            zombies.append(f)
        elif f[0] == "X":
            gone.setdefault(f[2], float(f[1]))
    problems = []
    if not procs:
        print("PROBLEM: no samples")
        return 1
    t_end = max(s[-1][0] for s in procs.values())

    hdr = (f"{'process':<10} {'pid':>7} | {'RSS start':>9} {'end':>6} {'max':>6} | {'anon start':>10} {'end':>5} "
           f"{'max':>5} | {'fds start':>9} {'end':>4} {'max':>4} | {'threads':>7} {'end':>4} {'max':>4} "
           f"| {'CPU% mean':>9} {'max':>5}")
    print(f"{len(next(iter(procs.values())))} samples over {t_end / 60:.1f} min; RSS and anonymous RSS in MiB; "
          f"CPU% of the machine ({args.cpus} CPUs; 100% = all busy)")
    print(hdr)
    print("-" * len(hdr))
    agent_cpu = []
    for name, s in procs.items():
        is_coll = name == "collector"
        t0, t1 = s[0][0], s[-1][0]
        ticks = [x[5] for x in s]
        mean = (ticks[-1] - ticks[0]) / args.clk_tck / max(t1 - t0, 1e-9) / args.cpus * 100
        peak = max(((b[5] - a[5]) / args.clk_tck / max(b[0] - a[0], 1e-9) / args.cpus * 100
                    for a, b in zip(s, s[1:])), default=0.0)
        if not is_coll:
            agent_cpu.append(mean)
        rss, fds, thr, anon = ([x[i] for x in s] for i in (2, 3, 4, 6))
        pids = sorted({x[1] for x in s})
        print(f"{name:<10} {','.join(pids):>7} | {human_kib(rss[0]):>9} {human_kib(rss[-1]):>6} "
              f"{human_kib(max(rss)):>6} | {human_kib(anon[0]):>10} {human_kib(anon[-1]):>5} {human_kib(max(anon)):>5} "
              f"| {fds[0]:>9} {fds[-1]:>4} {max(fds):>4} | {thr[0]:>7} {thr[-1]:>4} {max(thr):>4} "
              f"| {mean:>9.2f} {peak:>5.2f}")
        if len(pids) > 1:
            problems.append(f"{name} ran as more than one process during the run: pids {pids}")
        db_mid, db_last = thirds([(x[0], x[7]) for x in s], t_end)
        db_growth = (max(db_last) - max(db_mid)) / KIB if db_mid and db_last else 0
        for metric, idx, unit in (("anon", 6, "KiB"), ("rss", 2, "KiB"), ("fds", 3, ""), ("threads", 4, "")):
            mid, last = thirds([(x[0], x[idx]) for x in s], t_end)
            if not mid or not last:
                continue
            m = margin(metric, level(mid), args.agents, is_coll, db_growth)
            if level(last) > level(mid) + m:
                label = "anonymous RSS" if metric == "anon" else metric
                why = f", of which {min(SQLITE_CACHE_KIB, db_growth):.0f}KiB for its database's growth" \
                    if unit and db_growth > 0 else ""
                problems.append(f"{name}: {label} still growing: {level(last)}{unit} in the last third of the run, "
                                f"{level(mid)}{unit} in the middle third (levels: second-highest samples; "
                                f"margin {m:.0f}{unit}{why}); start {s[0][idx]}{unit}, end {s[-1][idx]}{unit}, "
                                f"max {max(x[idx] for x in s)}{unit}")
        if not is_coll and mean > args.cpu_limit:
            problems.append(f"{name}: mean CPU {mean:.2f}% of the machine, above the limit of {args.cpu_limit}%")
    if agent_cpu:
        print(f"agents' CPU% of the machine: mean per agent {sum(agent_cpu) / len(agent_cpu):.2f}, "
              f"highest {max(agent_cpu):.2f}, all {len(agent_cpu)} together {sum(agent_cpu):.2f}")

    if db:
        sizes, wal = [x[1] for x in db], [x[2] for x in db]
        hours = max((db[-1][0] - db[0][0]) / 3600, 1e-9)
        print(f"collector database: {human_bytes(sizes[0])} -> {human_bytes(sizes[-1])} "
              f"({(sizes[-1] - sizes[0]) / KIB / hours:.0f} KiB/hour); WAL start {human_bytes(wal[0])}, "
              f"end {human_bytes(wal[-1])}, max {human_bytes(max(wal))}")
        mid, last = thirds([(x[0], x[2]) for x in db], t_end)
        if mid and last:
            m = margin("wal", level(mid), args.agents, True)
            if level(last) > level(mid) + m:
                problems.append(f"collector: WAL still growing: {level(last)} bytes in the last third, "
                                f"{level(mid)} in the middle third (margin {m:.0f})")
    print(f"zombies seen: {len(zombies)} in {len(db)} samples")
    for z in zombies[:10]:
        problems.append(f"zombie at t={z[1]} s: pid {z[2]} ({z[4]}), parent {z[3]}")
    for name, t in gone.items():  # soak.sh names it with its exit status
        print(f"{name} was gone at t={t} s")
    for pr in problems:
        print(f"PROBLEM: {pr}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
