#!/usr/bin/env python3
"""Agent footprint benchmark: steward-agent collecting every second and pushing to a real
Steward, next to Prometheus node_exporter scraped every second, in the same run; prints RSS
(VmRSS, max and at the end) and CPU (% of one core) for both.

    make bench-agent                 # DURATION=600 (seconds) by default

Needs a release build of Steward (`cargo build --release -p steward`), the agent built with
its size profile (`cargo build --profile agent -p steward-agent`) and Debian's
`prometheus-node-exporter`. Not a test: it asserts nothing, it measures.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
AGENT = os.environ.get("AGENT_BIN", str(ROOT / "target/agent/steward-agent"))
EXPORTER = "/usr/bin/prometheus-node-exporter"
DURATION = int(os.environ.get("DURATION", "600"))
PASSWORD = "violet-harbour-engine-42"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def request(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
        return json.loads(data) if data else None


def main():
    for path in (STEWARD, AGENT, EXPORTER):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing (see the docstring)")
    tmp = tempfile.mkdtemp(prefix="steward-agent-bench-")
    port = free_port()
    hub = subprocess.Popen([STEWARD, "--data-dir", f"{tmp}/data", "serve", "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/steward.log", "w"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    token = open(f"{tmp}/data/setup-token").read().strip()
    request("POST", f"{base}/api/v1/setup", {"token": token, "username": "admin", "password": PASSWORD})
    access = request("POST", f"{base}/api/v1/auth/login", {"username": "admin", "password": PASSWORD})["access_token"]
    server = request("POST", f"{base}/api/v1/servers",
                     {"name": "bench", "host": "127.0.0.1", "ssh_user": "root", "metrics_interval_secs": 1}, access)
    enrollment = request("POST", f"{base}/api/v1/servers/{server['id']}/agent", {}, access)
    with open(f"{tmp}/token", "w") as f:
        f.write(enrollment["token"] + "\n")
    os.chmod(f"{tmp}/token", 0o600)

    exporter_port = free_port()
    agent = subprocess.Popen([AGENT, "--hub", base, "--token-file", f"{tmp}/token", "--interval", "1"],
                             stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/agent.log", "w"))
    exporter = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    procs = {"steward-agent": agent.pid, "node_exporter": exporter.pid}
    start_cpu = {k: cpu_seconds(p) for k, p in procs.items()}
    max_rss = {k: 0 for k in procs}
    t0 = time.monotonic()
    scrapes = 0
    while time.monotonic() - t0 < DURATION:
        tick = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter_port}/metrics", timeout=5) as r:
            r.read()
        scrapes += 1
        for k, p in procs.items():
            max_rss[k] = max(max_rss[k], rss_kib(p))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    elapsed = time.monotonic() - t0
    end_rss = {k: rss_kib(p) for k, p in procs.items()}
    cpu = {k: (cpu_seconds(p) - start_cpu[k]) / elapsed * 100 for k, p in procs.items()}
    info = request("GET", f"{base}/api/v1/servers/{server['id']}/agent", None, access)
    for p in (agent, exporter):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
    hub.send_signal(signal.SIGTERM)
    hub.wait(timeout=30)

    print(f"Agent footprint, {elapsed:.0f} s, samples every 1 s (agent pushed {info['last_seq']} batches; "
          f"node_exporter scraped {scrapes} times), {os.cpu_count()} cores\n")
    print("| | RSS max | RSS at end | CPU (% of one core) |")
    print("|---|---:|---:|---:|")
    for k in procs:
        print(f"| {k} | {max_rss[k] / 1024:.1f} MiB | {end_rss[k] / 1024:.1f} MiB | {cpu[k]:.3f} % |")
    print(f"\nsteward-agent / node_exporter: RSS {max_rss['steward-agent'] / max_rss['node_exporter']:.2f}x, "
          f"CPU {cpu['steward-agent'] / max(cpu['node_exporter'], 1e-9):.2f}x")
    print(f"agent binary: {os.path.getsize(AGENT):,} bytes")


if __name__ == "__main__":
    main()
