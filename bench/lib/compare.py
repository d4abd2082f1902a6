"""mgpu side by side with Slurm (and task-spooler where the workload applies), on this machine, in one run.

Called by bench/run; see there. Every figure is measured RUNS times per system; the table gives min/median/max
and the ratio of medians (above 1: mgpu is better by that factor). Everything this starts, it stops by PID.
"""
import argparse, datetime, json, os, platform, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def sh(cmd, env=None, capture=False, check=True):
    r = subprocess.run(["bash", "-c", cmd], env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {cmd[:200]}\n{r.stderr[-2000:]}")
    return r.stdout if capture else r.returncode


def timed(cmd, env=None):
    t0 = time.perf_counter()
    sh(cmd, env=env)
    return time.perf_counter() - t0


def rss_mib(pid, field="VmRSS:"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def settled_rss_mib(pid, field="VmRSS:", timeout=15):
    """The resident memory once it holds still (within 1 % over 3 s, read every 0.5 s; at most `timeout` s): what the
    controller keeps, not the garbage of the burst just answered (mgpu hands freed heap back 1-2 s after a burst, on
    its first quiet tick, and not within 2 s of its last hand-back)."""
    reads = [rss_mib(pid, field)]
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        reads = (reads + [rss_mib(pid, field)])[-7:]
        if len(reads) == 7 and max(reads) - min(reads) <= 0.01 * max(reads):
            return reads[-1]
    return reads[-1]


def wait_until(pred, timeout, interval):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s")


class Slurm:
    """Single-node Slurm 22.05 from bench/slurm/setup.sh (8 GRES GPUs on fake /dev/nvidia0..7)."""
    holds_output = True

    def __init__(self, profile):
        self.profile = profile  # "" (defaults) or a SchedulerParameters value
        self.name = "Slurm " + (profile or "default")
        self.env = dict(os.environ)

    def start(self):
        env = dict(os.environ, ANCHOR_SCHED_PARAMS=self.profile)
        subprocess.run(["bash", os.path.join(REPO, "bench/slurm/setup.sh")], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        self.pid = int(open("/run/slurm-anchor/slurmctld.started.pid").read())
        time.sleep(1)

    def stop(self):
        self.clear()
        subprocess.run(["bash", os.path.join(REPO, "bench/slurm/setup.sh"), "stop"], check=True, stdout=subprocess.DEVNULL)

    submit_one = "sbatch -Q -o /dev/null --gres=gpu:1 --wrap true >/dev/null"
    latency_cmd = "srun --gres=gpu:1 true"

    def bulk_cmd(self, n, workdir):
        return f"sbatch -Q -o /dev/null --array=1-{n} --gres=gpu:1 --wrap true >/dev/null"

    def active(self):
        return int(sh("squeue -h -r | wc -l", capture=True))

    def clear(self):
        sh("scancel -u root", check=False)
        wait_until(lambda: self.active() == 0, 300, 0.2)

    def hold_all(self):
        sh("sbatch -Q -o /dev/null --gres=gpu:8 --wrap 'sleep 100000' >/dev/null")
        wait_until(lambda: "R" in sh("squeue -h -o %t", capture=True).split(), 60, 0.2)

    def add_pending(self, n, workdir):
        out = sh(f"seq {n} | xargs -P 4 -I{{}} sbatch --parsable -o /dev/null --gres=gpu:1 --wrap true", capture=True)
        return out.split()

    listing = {"queue listing": "squeue >/dev/null"}

    def cancel_cmd(self, ids):
        return "scancel " + " ".join(ids)


class Mgpu:
    """mgpu master plus one agent with 8 simulated GPUs, on loopback, with fresh state."""

    def __init__(self, binary, master_args=()):
        self.binary = binary
        self.master_args = list(master_args)
        self.name = "mgpu"

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="mgpu-bench-")
        m = self.binary
        out = open(f"{self.dir}/master.out", "w")
        self.master = subprocess.Popen([m, "master", "--port", "0", "--state-dir", f"{self.dir}/state"] + self.master_args,
                                       stdout=out, stderr=open(f"{self.dir}/master.err", "w"))
        wait_until(lambda: "listening on" in open(f"{self.dir}/master.out").read(), 30, 0.05)
        text = open(f"{self.dir}/master.out").read()
        self.port = int(text.split("listening on http://")[1].split(":")[1].split()[0].strip("/"))
        self.agent = subprocess.Popen([m, "node", "--node-id", "bench1", "--master-port", str(self.port),
                                       "--simulate-gpus", "8", "--state-dir", f"{self.dir}/node",
                                       "--token-file", f"{self.dir}/state/cluster.secret"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/agent.err", "w"))
        tokens = f"{self.dir}/state/tokens"
        self.token = open(os.path.join(tokens, os.listdir(tokens)[0])).read().strip()
        self.env = dict(os.environ, MGPU_MASTER_HOST="127.0.0.1", MGPU_MASTER_PORT=str(self.port), MGPU_TOKEN=self.token)
        wait_until(lambda: any(n["state"] == "UP" for n in self.api("/v1/nodes")), 30, 0.05)
        self.pid = self.master.pid
        self.submit_one = f"{m} submit --gpus 1 true >/dev/null"
        self.latency_cmd = f"{m} srun --gpus 1 -- true"
        self.listing = {"queue listing": f"{m} queue >/dev/null", "queue listing --json": f"{m} queue --json >/dev/null"}
        time.sleep(1)

    def api(self, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def active_ids(self):
        return [j["id"] for j in self.api("/v1/queue")["jobs"] if j["state"] in ("PENDING", "RUNNING")]

    def active(self):
        # The Prometheus counts: cheap for the master, so polling does not slow down what it measures.
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics", headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
        return sum(int(float(line.split()[-1])) for line in text.splitlines()
                   if line.startswith(('mgpu_jobs{state="PENDING"}', 'mgpu_jobs{state="RUNNING"}')))

    def clear(self):
        ids = self.active_ids()
        for i in range(0, len(ids), 50_000):  # the master takes at most 100,000 ids a request
            self.api("/v1/jobs/cancel", {"ids": ids[i:i + 50_000]})
        wait_until(lambda: self.active() == 0, 120, 0.05)

    def stop(self, wait_for_jobs=True):
        if wait_for_jobs:
            self.clear()
        else:  # jobs on agents that are gone never end: cancel what runs here, give it a moment, stop
            ids = self.active_ids()
            if ids:
                self.api("/v1/jobs/cancel", {"ids": ids})
            time.sleep(2)
        for p in (self.agent, self.master):
            p.send_signal(signal.SIGTERM)
        for p in (self.agent, self.master):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def commands_file(self, n, workdir):
        path = f"{workdir}/commands-{n}.txt"
        with open(path, "w") as f:
            f.write("true\n" * n)
        return path

    def bulk_cmd(self, n, workdir):
        # An array job, as Slurm's row submits (sbatch --array): one record, n tasks.
        return f"{self.binary} submit --gpus 1 --array 1-{n} true >/dev/null"

    def bulk_file_cmd(self, n, workdir):
        # n separate jobs, one per line of a file: Slurm has no such submission in one call.
        return f"{self.binary} submit --gpus 1 --from-file {self.commands_file(n, workdir)} >/dev/null"

    def hold_all(self):
        sh(f"{self.binary} submit --gpus 8 'sleep 100000' >/dev/null", env=self.env)
        wait_until(lambda: any(j["state"] == "RUNNING" for j in self.api("/v1/queue")["jobs"]), 30, 0.05)

    def add_pending(self, n, workdir):
        out = sh(f"{self.binary} submit --gpus 1 --from-file {self.commands_file(n, workdir)}", env=self.env, capture=True)
        return [line.split()[-1] for line in out.splitlines() if line.startswith("Submitted job")]

    def cancel_cmd(self, ids):
        return f"{self.binary} cancel " + " ".join(ids) + " >/dev/null"


class TaskSpooler:
    """task-spooler (tsp) with 8 slots: a one-host queue with no GPUs and no network; a floor to compare with."""

    def __init__(self):
        self.name = "tsp"
        self.dir = tempfile.mkdtemp(prefix="tsp-bench-")
        self.env = dict(os.environ, TS_SOCKET=f"{self.dir}/socket", TMPDIR=self.dir, TS_MAXFINISHED="100000")

    def start(self):
        sh("tsp -K", env=self.env, check=False)
        sh("tsp -S 8", env=self.env)

    def stop(self):
        sh("tsp -K", env=self.env, check=False)

    submit_one = "tsp -n true >/dev/null"
    latency_cmd = "tsp -n -f true"

    def active(self):
        out = sh("tsp -l", env=self.env, capture=True)
        return sum(1 for line in out.splitlines()[1:] if len(line.split()) > 1 and line.split()[1] in ("running", "queued"))

    def clear(self):
        wait_until(lambda: self.active() == 0, 300, 0.05)
        sh("tsp -C", env=self.env)

    def bulk_cmd(self, n, workdir):
        return f"for i in $(seq {n}); do tsp -n true >/dev/null; done"


def loop(cmd, n):
    return f"for i in $(seq {n}); do {cmd}; done"


class Bench:
    def __init__(self, args):
        self.args = args
        self.results = {}  # (figure, system) -> [values]
        self.units = {}
        self.better = {}   # figure -> "higher" | "lower"
        self.order = []
        self.work = tempfile.mkdtemp(prefix="bench-run-")

    def record(self, figure, unit, better, system, value):
        if figure not in self.units:
            self.order.append(figure)
        self.units[figure], self.better[figure] = unit, better
        self.results.setdefault((figure, system.name), []).append(value)
        print(f"  {system.name:32s} {figure:36s} {value:10.3f} {unit}", flush=True)

    def drain(self, system, n):
        system.clear()
        start = time.perf_counter()
        # mgpu's drain submits separate jobs (--from-file), as in every run before its bulk row took an array.
        sh(getattr(system, "bulk_file_cmd", system.bulk_cmd)(n, self.work), env=system.env)
        wait_until(lambda: system.active() == 0, 3600, 0.2 if isinstance(system, Slurm) else 0.02)
        return n / (time.perf_counter() - start)

    def run_system(self, system, pending_section=True):
        a = self.args
        print(f"== {system.name}", flush=True)
        system.start()
        try:
            if hasattr(system, "pid"):
                self.record("controller RSS, idle", "MiB", "lower", system, rss_mib(system.pid))
                # What of it is the controller's own (heap, stacks): the rest is pages of its binary and libraries,
                # mapped from the page cache, shared with other processes of the same files and reclaimable.
                self.record("controller anonymous memory, idle", "MiB", "lower", system, rss_mib(system.pid, "RssAnon:"))
            for _ in range(a.runs):
                system.clear()
                t = timed(loop(system.submit_one, a.jobs), env=system.env)
                self.record(f"CLI submit, {a.jobs} sequential", "jobs/s", "higher", system, a.jobs / t)
            if not isinstance(system, TaskSpooler):
                for _ in range(a.runs):
                    system.clear()
                    t = timed(system.bulk_cmd(a.jobs, self.work), env=system.env)
                    self.record(f"bulk submit, {a.jobs} in one call", "ms", "lower", system, t * 1000)
            if hasattr(system, "bulk_file_cmd"):
                for _ in range(a.runs):
                    system.clear()
                    t = timed(system.bulk_file_cmd(a.jobs, self.work), env=system.env)
                    self.record(f"bulk submit, {a.jobs} separate jobs in one call (--from-file)", "ms", "lower", system, t * 1000)
            for _ in range(a.runs):
                self.record(f"drain, {a.jobs} `true` jobs", "jobs/s", "higher", system, self.drain(system, a.jobs))
            system.clear()
            for _ in range(a.runs):
                times = sorted(timed(system.latency_cmd, env=system.env) * 1000 for _ in range(20))
                self.record("latency `true`, median of 20", "ms", "lower", system, statistics.median(times))
                self.record("latency `true`, p90 of 20", "ms", "lower", system, times[int(len(times) * 0.9) - 1])
            if pending_section and not isinstance(system, TaskSpooler):
                system.clear()
                system.hold_all()
                ids = system.add_pending(a.pending, self.work)
                assert len(ids) == a.pending, f"{system.name}: {len(ids)} of {a.pending} submitted"
                time.sleep(2)
                self.record(f"controller RSS, {a.pending} pending", "MiB", "lower", system, settled_rss_mib(system.pid))
                self.record(f"controller anonymous memory, {a.pending} pending", "MiB", "lower", system,
                            settled_rss_mib(system.pid, "RssAnon:"))
                for figure, cmd in system.listing.items():
                    for _ in range(a.runs):
                        self.record(f"{figure}, {a.pending} pending", "ms", "lower", system, timed(cmd, env=system.env) * 1000)
                for r in range(a.runs):
                    batch = ids[r * a.cancel:(r + 1) * a.cancel]
                    self.record(f"cancel {a.cancel} pending", "s", "lower", system, timed(system.cancel_cmd(batch), env=system.env))
        finally:
            system.stop()

    def table(self):
        systems = [s for s in self.systems]
        head = "| figure | " + " | ".join(f"{s} (min / median / max)" for s in systems) + \
               " | " + " | ".join(f"mgpu vs {s}" for s in systems if s != "mgpu") + " |"
        lines = [head, "|" + "---|" * (1 + len(systems) + len([s for s in systems if s != "mgpu"]))]
        for figure in self.order:
            cells, medians = [], {}
            for s in systems:
                v = self.results.get((figure, s))
                if not v:
                    cells.append("–")
                    continue
                medians[s] = statistics.median(v)
                fmt = "%.1f" if max(v) < 1000 else "%.0f"
                if self.units[figure] == "s":
                    fmt = "%.3f"
                cells.append(" / ".join(fmt % x for x in (min(v), medians[s], max(v))))
            ratios = []
            for s in systems:
                if s == "mgpu":
                    continue
                if s not in medians or "mgpu" not in medians or medians["mgpu"] == 0:
                    ratios.append("–")
                    continue
                r = medians["mgpu"] / medians[s] if self.better[figure] == "higher" else medians[s] / medians["mgpu"]
                ratios.append(f"{r:.2f}×")
            lines.append(f"| {figure} ({self.units[figure]}) | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        return "\n".join(lines)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    commit = sh(f"git -C {REPO} rev-parse --short HEAD", capture=True, check=False).strip()
    slurm = sh("sinfo -V", capture=True, check=False).strip()
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}; {slurm}; mgpu {commit}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mgpu", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--pending", type=int, default=10000)
    p.add_argument("--cancel", type=int, default=1000)
    p.add_argument("--out", required=True)
    p.add_argument("--systems", default="slurm-default,slurm-fast,tsp,mgpu")
    a = p.parse_args()
    bench = Bench(a)
    makers = {"slurm-default": lambda: Slurm(""), "slurm-fast": lambda: Slurm("batch_sched_delay=0"),
              "tsp": TaskSpooler, "mgpu": lambda: Mgpu(a.mgpu)}
    chosen = [makers[s]() for s in a.systems.split(",")]
    bench.systems = [s.name for s in chosen]
    started = datetime.datetime.now()
    for system in chosen:
        bench.run_system(system)
    table = bench.table()
    text = (f"# mgpu vs Slurm, {started:%Y-%m-%d %H:%M}\n\nMachine: {machine()}\n\n"
            f"Each figure {a.runs} times per system (min / median / max); the last columns are ratios of medians, "
            f"above 1× where mgpu is better. Slurm `batch_sched_delay=0` is Slurm's fast profile. "
            f"Made by `bench/run` in {(datetime.datetime.now() - started).seconds // 60} min.\n\n{table}\n")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    with open(a.out.replace(".md", ".json"), "w") as f:
        json.dump({f"{k[0]} | {k[1]}": v for k, v in bench.results.items()}, f, indent=1)
    print("\n" + text)


if __name__ == "__main__":
    main()
