"""pytest-xdist's `--dist load`, `worksteal` and `loadfile` simulated on measured test times.

    pytest --collect-only -q tests > /tmp/order.txt
    (benchmarks/cpu_durations.py's lines of a run: CPU_DURATIONS_OUT=/tmp/cpu.tsv)
    python benchmarks/xdist_schedules.py /tmp/order.txt /tmp/cpu.tsv [more.tsv ...]

Each worker runs its tests one after the other at their measured CPU time; the schedulers are
xdist 3.8's rules, simplified (scheduler/load.py's refill heuristic, worksteal.py's half of the
victim's queue, loadscope.py's two files a worker). Prints the wall time of the measured tests
in collection order and, over every prefix of them (each a suite that ends at another test),
how far past an even split the last worker ends. Session 46 chose `--dist worksteal` by it
(docs/testing.md).
"""
import collections
import statistics
import sys

order = [l.strip() for l in open(sys.argv[1]) if l.startswith('tests/')]
cpu = {}
for path in sys.argv[2:]:
    for l in open(path):
        f = l.rstrip('\n').split('\t')
        if f[0] == 'test': cpu[f[1]] = float(f[2])
ids = [t for t in order if t in cpu]
d = [cpu[t] for t in ids]
N = 2

def run(queues_init, on_done):
    q = [collections.deque(x) for x in queues_init]; t = [0.0]*N; done=[False]*N
    while not all(done):
        # the node whose current test ends first
        cands = [(t[i] + (d[q[i][0]] if q[i] else 0), i) for i in range(N) if not done[i]]
        _, i = min(cands)
        if not q[i]:
            on_done(i, q, None)
            if not q[i]: done[i] = True
            continue
        k = q[i].popleft(); t[i] += d[k]
        on_done(i, q, d[k])
        if not q[i]:
            on_done(i, q, None)
            if not q[i]: done[i] = True
    return t

def load():
    pending = list(range(len(d)))
    chunk = max(len(d)//N//4, 2)
    init = []
    for _ in range(N):
        init.append(pending[:chunk]); del pending[:chunk]
    def on_done(i, q, dur):
        if not pending: return
        mn = max(2, len(pending)//N//4); mx = max(2, len(pending)//N//2)
        if len(q[i]) < mn:
            if dur is not None and dur >= 0.1 and len(q[i]) >= 2: return
            n = mx - len(q[i]); q[i].extend(pending[:n]); del pending[:n]
    return run(init, on_done)

def worksteal():
    n = len(d)//N
    init = [list(range(j*n, (j+1)*n if j < N-1 else len(d))) for j in range(N)]
    def on_done(i, q, dur):
        if len(q[i]) < 2:
            v = max(range(N), key=lambda j: len(q[j]))
            if v != i and len(q[v]) > 2:
                take = (len(q[v]) - 1)//2
                stolen = [q[v].pop() for _ in range(take)][::-1]
                q[i].extend(stolen)
    return run(init, on_done)

def loadfile():
    files = collections.OrderedDict()
    for k, t in enumerate(ids[:len(d)]): files.setdefault(t.split('::')[0], []).append(k)
    work = list(files.values())
    init = [[] for _ in range(N)]
    for j in range(N):
        for _ in range(2):
            if work: init[j].extend(work.pop(0))
    def on_done(i, q, dur):
        # a new file when fewer than two of its files are unfinished
        scopes = {ids[k].split('::')[0] for k in q[i]}
        while work and len(scopes) < 2:
            f = work.pop(0); q[i].extend(f); scopes.add(ids[f[0]].split('::')[0])
    return run(init, on_done)

print(f"{len(d)} tests, {sum(d):.1f} s of CPU; ideal {sum(d)/N:.1f} s")
for name, f in [("load", load), ("worksteal", worksteal), ("loadfile", loadfile)]:
    t = f(); print(f"{name:10s} workers end {t[0]:7.1f} {t[1]:7.1f}  wall {max(t):7.1f}  idle tail {max(t)-min(t):5.1f}")

# the tail over every prefix of the measured tests (each a suite that ends at another test)
full = d[:]
tails = collections.defaultdict(list)
for n in range(100, len(full) + 1, 5):
    d = full[:n]
    for name, f in [("load", load), ("worksteal", worksteal), ("loadfile", loadfile)]:
        t = f(); tails[name].append(max(t) - sum(d) / N)
for name, v in tails.items():
    print(f"{name:10s} over {len(v)} prefixes: wall over ideal mean {statistics.mean(v):5.2f} s, max {max(v):5.2f} s")
