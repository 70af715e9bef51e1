#!/usr/bin/env python3
"""Fan-out benchmark: run `true` on 50 real OpenSSH servers on loopback with Steward (cold:
new connections; warm: pooled), parallel-ssh (PyPI) and pssh (Debian), in one run, and print
wall time and CPU seconds for each.

    sudo make bench-fanout            # or: bench/.venv/bin/python bench/fanout.py

Needs root (it creates a throwaway account `stwbench` with /bin/sh, so no tool pays for a
heavy shell start-up file, and removes it at the end), a release build of Steward
(`cargo build --release -p steward`), /usr/sbin/sshd, Debian's `pssh` package and the
`parallel-ssh` and `requests` Python packages (the Makefile target installs them into
bench/.venv). Not a test: it asserts nothing, it measures.
"""
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
USER = "stwbench"
HOSTS = 50
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PASSWORD = "violet-harbour-engine-42"
# How long Steward took to accept each run request (validation, storing the run and its hosts).
ACCEPTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def ticks(pid):
    """CPU seconds (user + system) a process has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    """50 addresses on 4 sshd processes (sshd listens on at most 16 addresses)."""

    def __init__(self, tmp):
        self.tmp = tmp
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/id"], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/host"], check=True)
        shutil.copy(f"{tmp}/id.pub", f"{tmp}/authorized_keys")
        # sshd reads it as the account that logs in.
        os.chmod(f"{tmp}/authorized_keys", 0o644)
        self.targets = []  # (host, port)
        self.procs = []
        os.makedirs("/run/sshd", exist_ok=True)
        addresses = [f"127.0.0.{10 + i}" for i in range(HOSTS)]
        for n, group in enumerate(addresses[i:i + 16] for i in range(0, HOSTS, 16)):
            port = free_port()
            cfg = f"{tmp}/sshd_{n}"
            with open(cfg, "w") as f:
                f.write(f"Port {port}\n" + "".join(f"ListenAddress {a}\n" for a in group))
                f.write(f"HostKey {tmp}/host\nPidFile {tmp}/sshd_{n}.pid\nAuthorizedKeysFile {tmp}/authorized_keys\n"
                        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                        "LogLevel ERROR\nMaxStartups 500\nMaxSessions 100\n")
            self.procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", cfg],
                                               stderr=open(f"{tmp}/sshd_{n}.log", "w")))
            self.targets += [(a, port) for a in group]
        for host, port in self.targets:
            for _ in range(200):
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.02)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


class Steward:
    def __init__(self, tmp, fleet):
        self.port = free_port()
        self.data = f"{tmp}/steward-data"
        self.proc = subprocess.Popen(
            [STEWARD, "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}",
             "--ssh-max-connections", "512"],
            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/steward.log", "w"))
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        for _ in range(300):
            try:
                requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        token = open(f"{self.data}/setup-token").read().strip()
        self.s = requests.Session()
        r = self.s.post(f"{self.base}/setup", json={"token": token, "username": "admin", "password": PASSWORD})
        r.raise_for_status()
        r = self.s.post(f"{self.base}/auth/login", json={"username": "admin", "password": PASSWORD})
        r.raise_for_status()
        self.s.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        key = open(f"{fleet.tmp}/id").read()
        for host, port in fleet.targets:
            r = self.s.post(f"{self.base}/servers", json={"name": f"n-{host}", "host": host, "port": port,
                                                          "ssh_user": USER, "tags": ["bench"]})
            r.raise_for_status()
            sid = r.json()["id"]
            self.s.put(f"{self.base}/servers/{sid}/credential",
                       json={"kind": "private_key", "private_key": key}).raise_for_status()
        self.s.post(f"{self.base}/auth/step-up", json={"password": PASSWORD}).raise_for_status()

    def run(self):
        """One run of `true` on the fleet: (wall seconds, CPU seconds of the Steward process)."""
        cpu0 = ticks(self.proc.pid)
        t0 = time.perf_counter()
        r = self.s.post(f"{self.base}/executions", json={"command": "true", "tags": ["bench"], "concurrency": HOSTS})
        r.raise_for_status()
        accept = r.elapsed.total_seconds()
        ACCEPTS.append(accept)
        run_id = r.json()["id"]
        while True:
            time.sleep(0.02)
            d = self.s.get(f"{self.base}/executions/{run_id}").json()
            if d["status"] != "running":
                break
        cpu = ticks(self.proc.pid) - cpu0
        # Wall time as Steward measured it (the polling interval would otherwise add to it),
        # plus the time to accept the request.
        wall = (iso_ms(d["finished_at"]) - iso_ms(d["created_at"])) / 1000 + accept
        assert d["summary"]["ok"] == HOSTS, (d["summary"], [h.get("error") for h in d["hosts"]][:3])
        return wall, cpu

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def run_parallel_ssh(fleet, rounds):
    """parallel-ssh (ssh2-python): a fresh client (cold), then runs on its kept connections (warm)."""
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig

    hosts = [h for h, _ in fleet.targets]
    config = [HostConfig(port=p, user=USER, private_key=f"{fleet.tmp}/id") for _, p in fleet.targets]
    results = []
    for i in range(rounds):
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        client = ParallelSSHClient(hosts, host_config=config, pool_size=HOSTS, num_retries=1)
        out = client.run_command("true")
        client.join(out)
        wall = time.perf_counter() - t0
        assert all(o.exit_code == 0 for o in out), [o.exception for o in out if o.exit_code != 0]
        cold = (wall, time.process_time() - cpu0)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        out = client.run_command("true")
        client.join(out)
        warm = (time.perf_counter() - t0, time.process_time() - cpu0)
        assert all(o.exit_code == 0 for o in out)
        results.append((cold, warm))
        del client
    return results


def run_pssh(fleet, rounds):
    """Debian's pssh: one `ssh` process per host (no reuse, so cold only)."""
    hostfile = f"{fleet.tmp}/hosts"
    with open(hostfile, "w") as f:
        for h, p in fleet.targets:
            f.write(f"{USER}@{h}:{p}\n")
    results = []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(["parallel-ssh", "-h", hostfile, "-p", str(HOSTS), "-t", "60",
                        "-x", f"-i {fleet.tmp}/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                              "-o LogLevel=ERROR -o BatchMode=yes", "true"],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        results.append((wall, cpu))
    return results


def iso_ms(t):
    from datetime import datetime
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000


def med(xs):
    return statistics.median(xs)


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates the throwaway account stwbench")
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], stderr=subprocess.DEVNULL)
    # A new account is locked ("!"), and sshd without PAM refuses even key logins to locked
    # accounts; "*" means "no password" without locking it.
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    tmp = tempfile.mkdtemp(prefix="steward-bench-")
    os.chmod(tmp, 0o755)
    fleet = Fleet(tmp)
    steward = None
    try:
        # Steward: each round a fresh instance's first run is cold (new connections, host keys
        # recorded on first use); the following run is warm (pooled connections).
        st_cold, st_warm = [], []
        for _ in range(ROUNDS):
            shutil.rmtree(f"{tmp}/steward-data", ignore_errors=True)
            steward = Steward(tmp, fleet)
            st_cold.append(steward.run())
            st_warm += [steward.run() for _ in range(3)]
            steward.stop()
            steward = None
        ps = run_parallel_ssh(fleet, ROUNDS)
        pp = run_pssh(fleet, ROUNDS)
    finally:
        if steward:
            steward.stop()
        fleet.stop()
        subprocess.run(["pkill", "-KILL", "-u", USER])
        subprocess.run(["userdel", "-r", USER], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [
        ("Steward, cold (new connections)", st_cold),
        ("Steward, warm (pooled connections)", st_warm),
        ("parallel-ssh 2 (PyPI), cold", [c for c, _ in ps]),
        ("parallel-ssh 2 (PyPI), warm (same client)", [w for _, w in ps]),
        ("pssh (Debian `parallel-ssh`), cold", pp),
    ]
    print(f"Fan-out of `true` to {HOSTS} sshd targets on loopback, median of {ROUNDS} rounds "
          f"({len(st_warm)} for Steward warm), {os.cpu_count()} cores\n")
    print("| Tool | wall (ms) | CPU (s) |")
    print("|---|---:|---:|")
    for name, xs in rows:
        print(f"| {name} | {med([w for w, _ in xs]) * 1000:.0f} | {med([c for _, c in xs]):.2f} |")
    print(f"\nOf Steward's wall time, accepting the request (checks, storing the run and its "
          f"{HOSTS} hosts, audit) took {med(ACCEPTS) * 1000:.0f} ms (median).")
    cold_ratio = med([w for w, _ in st_cold]) / med([w for w, _ in (c for c, _ in ps)])
    print(f"Steward cold / parallel-ssh cold: {cold_ratio:.2f}×")
    json.dump({"steward_cold": st_cold, "steward_warm": st_warm, "parallel_ssh": ps, "pssh": pp},
              open(os.environ.get("BENCH_JSON", "/dev/null"), "w"))


if __name__ == "__main__":
    main()
