"""Usage: .venv/bin/python bench/fork_pss.py freeze|nofreeze none|gc|both (issue 19).

Does gc.freeze() before fork shrink a forked child's private memory? Import what the
warm launcher imports (gc.freeze() after that with "freeze"), fork 4 children that do
nothing ("none"), run a full gc.collect() ("gc"), or also import what a flow run imports
next ("both"), and print each child's Pss and Private_Dirty from smaps_rollup."""
import gc, os, sys, time
import prefect, prefect.flow_engine, prefect.engine  # noqa
freeze = sys.argv[1] == "freeze"
if freeze:
    gc.freeze()
def rollup(pid):
    d = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, _, v = line.partition(":")
        if v.strip().endswith("kB"):
            d[k] = int(v.split()[0])
    return d
pids, rs = [], []
for i in range(4):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        stage = sys.argv[2]
        if stage in ("gc", "both"):
            gc.collect()
        if stage == "both":
            import prefect.deployments.steps, prefect.client.orchestration  # noqa
        os.write(w, b"x"); time.sleep(3); os._exit(0)
    os.close(w); pids.append(pid); rs.append(r)
for r in rs:
    os.read(r, 1)
time.sleep(0.3)
own = rollup(os.getpid())
tot = [rollup(p) for p in pids]
print(f"freeze={freeze} child={sys.argv[2]}: parent Rss {own['Rss']//1024} MiB; children Pss "
      f"{[t['Pss']//1024 for t in tot]} MiB, Private_Dirty {[t['Private_Dirty']//1024 for t in tot]} MiB")
for p in pids:
    os.waitpid(p, 0)
