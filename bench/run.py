#!/usr/bin/env python3
"""bootgate benchmarks: every figure is a median over >= 10 runs (with min and max), or
for the daemon at scale a measure over a window, and is compared with a baseline
measured in the same run on the same machine.

Writes target/bench/results.json and prints a table. Exits non-zero only when a
benchmark could not run; a missed target is reported, never a failure.

`bench/run.py verdict parallel` runs only the named cases; `make bench` runs them all:
  verdict      six checks against real components vs greenboot-shaped serial scripts and
               one bash line; start-up vs a minimal Rust binary of the same profile
  parallel     64 checks of 200 ms at once vs a shell starting as many
  hang         one check against a port that never answers vs curl
  endpoint     wrk on the health and metrics routes vs nginx, and the daemon's footprint
  concurrency  64 checks of 200 ms, 8 at a time
  tls          the endpoint over TLS and with basic auth vs nginx over TLS
  scale        `bootgate run` with 100 and 1,000 checks every 1 s: CPU, RSS, threads, fds
               (BENCH_SCALE_SECONDS, default 60, the window of each)
"""

import base64
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request

import peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BOOTGATE_BIN", f"{ROOT}/target/release/bootgate")
RUNS = max(10, int(os.environ.get("BENCH_RUNS", "10")))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
OUT = f"{ROOT}/target/bench"
TMP = tempfile.mkdtemp(prefix="bgbench")
# nginx's worker runs as nobody and must read the baseline's files here.
os.chmod(TMP, 0o755)


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def hyperfine(commands, ignore_failure=False, shell=True, rounds=1, between=None):
    """Times whole commands (exec to exit); returns {name: summary in seconds}. Without
    `shell` each command is exec'd directly (for commands of a few ms). With `rounds`,
    hyperfine runs all the commands that many times over (calling `between` after each
    round) and the runs are pooled, so that a change in what else the machine does falls
    on each command alike."""
    export = f"{TMP}/hyperfine.json"
    argv = [peers.need("hyperfine", "hyperfine"), "--runs", str(RUNS), "--warmup", "1", "--style", "none",
            "--export-json", export]
    if ignore_failure:
        argv.append("--ignore-failure")
    if not shell:
        argv.append("--shell=none")
    for name, cmd in commands.items():
        argv += ["--command-name", name, cmd]
    times = {name: [] for name in commands}
    for _ in range(rounds):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        with open(export) as f:
            for r in json.load(f)["results"]:
                times[r["command"]] += r["times"]
        if between:
            between()
    return {name: summary(t) for name, t in times.items()}


def policy(name, text):
    path = f"{TMP}/{name}.yaml"
    with open(path, "w") as f:
        f.write(text)
    out = subprocess.run([BIN, "validate", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench policy {name} is invalid: {out.stderr}")
    return path


def check_passes(path):
    out = subprocess.run([BIN, "check", "--format", "json", "--policy", path], capture_output=True, text=True)
    verdict = json.loads(out.stdout)
    if verdict["gate"] != "passed":
        raise RuntimeError(f"{path}: the gate did not pass: {out.stdout}")
    return verdict


def minimal_rust():
    """A Rust binary that prints a line (its version with `--version`), no dependencies,
    built with bootgate's own [profile.release] and edition from Cargo.toml in a temp
    cargo project: what any Rust program of ours costs to start. Returns its path."""
    with open(f"{ROOT}/Cargo.toml", "rb") as f:
        manifest = tomllib.load(f)
    project = f"{TMP}/minimal"
    os.makedirs(f"{project}/src")
    profile = "".join(f"{key} = {json.dumps(value)}\n" for key, value in manifest["profile"]["release"].items())
    with open(f"{project}/Cargo.toml", "w") as f:
        f.write(f"""[package]
name = "minimal"
version = "0.1.0"
edition = "{manifest['package']['edition']}"

[dependencies]

[profile.release]
{profile}
[workspace]
""")
    with open(f"{project}/src/main.rs", "w") as f:
        f.write("""fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("--version") => println!("minimal {}", env!("CARGO_PKG_VERSION")),
        _ => println!("minimal"),
    }
}
""")
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    subprocess.run([cargo, "build", "--release", "--offline", "--quiet"], cwd=project, check=True,
                   env=os.environ | {"CARGO_TARGET_DIR": f"{project}/target"})
    return f"{project}/target/release/minimal"


def greenboot_tree(commands, required):
    """The checks `commands` ({name: shell command}) as greenboot keeps them: one script per
    check in check/required.d (the `required` ones) or check/wanted.d, numbered in order,
    and a runner shaped as `greenboot check` runs them: every *.sh of required.d, then of
    wanted.d, in sorted order, each with its own bash, one after another; a failed required
    script fails the check at once, a failed wanted one is only reported. (greenboot also
    pipes each script through systemd-cat into the journal; this runner does not, so it
    is, if anything, the faster of the two.) Returns the tree's directory."""
    root = f"{TMP}/greenboot"
    for i, (name, command) in enumerate(commands.items()):
        tree = f"{root}/check/{'required.d' if name in required else 'wanted.d'}"
        os.makedirs(tree, exist_ok=True)
        with open(f"{tree}/{i + 1:02d}_{name}.sh", "w") as f:
            f.write(f"#!/bin/bash\n{command}\n")
    with open(f"{root}/greenboot-check", "w") as f:
        f.write("""set -uo pipefail
run() {
  local dir=$1 mode=$2 script rc
  for script in $(find "$dir" -name '*.sh' | sort); do
    rc=0
    bash "$script" || rc=$?
    if [ $rc -ne 0 ]; then
      if [ "$mode" = strict ]; then
        echo "<0>Script '$(basename "$script")' FAILURE (exit code '$rc')" >&2
        return $rc
      fi
      echo "<2>Script '$(basename "$script")' FAILURE (exit code '$rc'). Continuing..." >&2
    else
      echo "<6>Script '$(basename "$script")' SUCCESS"
    fi
  done
}
echo "Running Required Health Check Scripts..."
run "$1/check/required.d" strict || exit 1
echo "Running Wanted Health Check Scripts..."
run "$1/check/wanted.d" relaxed
""")
    return root


def verdict_time():
    """1. A piccolo-like gate against real components vs the same checks as scripts."""
    tpm = peers.Swtpm()
    docker = peers.Dockerd()
    docker.run_healthy("bench-app", docker.busybox_image())
    api = peers.http_server()
    url = f"http://127.0.0.1:{api}/api/v1/status"
    others = f"""  - {{name: storage, kind: disk, path: /, min_free_percent: 1}}
  - {{name: api, kind: http, url: "{url}"}}
  - {{name: docker, kind: docker, critical: false, socket: "{docker.sock}"}}
  - {{name: containers, kind: containers, critical: false, after: [docker], socket: "{docker.sock}"}}
  - {{name: network, kind: tcp, critical: false, targets: ["127.0.0.1:{api}"]}}
"""
    path = policy("piccolo", f"""version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: "{tpm.tcti}"}}\n""" + others)
    # The same without its TPM check: what a command pays for what its policy does not use.
    no_tpm = policy("piccolo-no-tpm", "version: 1\nchecks:\n" + others)
    verdicts = [check_passes(path) for _ in range(RUNS)]
    in_process = [v["gate_duration_ms"] for v in verdicts]
    per_check = {c["name"]: summary([next(x["duration_ms"] for x in v["checks"] if x["name"] == c["name"])
                                     for v in verdicts]) for c in verdicts[0]["checks"]}
    docker_cli = f"/usr/bin/docker -H unix://{docker.sock}"
    commands = {"tpm": f"tpm2_pcrread -T {tpm.tcti} sha256:0 >/dev/null", "storage": "df -P / >/dev/null",
                "api": f"curl -fsS {url} >/dev/null", "docker": f"{docker_cli} version >/dev/null",
                "containers": f"{docker_cli} ps --filter health=unhealthy -q >/dev/null",
                "network": f"exec 3<>/dev/tcp/127.0.0.1/{api}"}
    greenboot = greenboot_tree(commands, required=("tpm", "storage", "api"))
    times = hyperfine({"bootgate check": f"{BIN} check --policy {path}",
                       "greenboot-shaped scripts": f"bash {greenboot}/greenboot-check {greenboot}",
                       "one bash line": "bash -c '" + " && ".join(commands.values()) + "'"})
    # Start-up alone: exec to exit with no gate, and with the policy read too, against a
    # minimal Rust binary built with the same release profile.
    minimal = minimal_rust()
    # The gate's own time of the policy without tpm, from its JSON verdicts taken in
    # between the rounds of the same timings.
    no_tpm_gates = []
    times |= hyperfine({"bootgate --version": f"{BIN} --version", "bootgate validate": f"{BIN} validate {path}",
                        "bootgate check, no tpm": f"{BIN} check --policy {no_tpm}",
                        "minimal Rust --version": f"{minimal} --version",
                        "/bin/true (baseline)": "/bin/true"}, shell=False, rounds=5,
                       between=lambda: no_tpm_gates.extend(check_passes(no_tpm)["gate_duration_ms"]
                                                           for _ in range(RUNS // 5 + 1)))
    no_tpm_gate = summary(no_tpm_gates)
    version, minimal_s = times["bootgate --version"], times["minimal Rust --version"]
    check_no_tpm = times["bootgate check, no tpm"]
    bg, gb, sh = times["bootgate check"], times["greenboot-shaped scripts"], times["one bash line"]
    slowest = max(per_check.values(), key=lambda x: x["median"])
    docker.cleanup()
    return {
        "bootgate_s": bg, "gate_in_process_ms": summary(in_process), "per_check_ms": per_check,
        "baselines_s": {"greenboot_shaped_scripts": gb, "one_bash_line": sh},
        "ratio_greenboot_shaped_over_bootgate": gb["median"] / bg["median"],
        "ratio_one_bash_line_over_bootgate": sh["median"] / bg["median"],
        "ratio_process_over_slowest_check": bg["median"] * 1000 / slowest["median"],
        "ratio_process_over_gate": bg["median"] * 1000 / statistics.median(in_process),
        "startup_s": {"version": version, "validate": times["bootgate validate"], "check_without_tpm": check_no_tpm,
                      "minimal_rust_version": minimal_s, "true": times["/bin/true (baseline)"]},
        "check_without_tpm_gate_ms": no_tpm_gate,
        "ratio_version_over_minimal_rust": version["median"] / minimal_s["median"],
        "ratio_check_without_tpm_minus_gate_over_minimal_rust":
            (check_no_tpm["median"] - no_tpm_gate["median"] / 1000) / minimal_s["median"],
        "target": "bootgate median <= 10 ms; whole process <= 1.25x the slowest check; --version, and check of "
                  "the policy without tpm minus its gate, within 2x a minimal Rust binary",
    }


def parallel_overhead():
    """2. 64 checks of 200 ms each: verdict time / 200 ms."""
    execs = "".join(f"  - {{name: s{i}, kind: exec, retries: 0, command: [sleep, '0.2']}}\n" for i in range(64))
    slow = peers.http_server(delay=0.2)
    https = "".join(f"  - {{name: h{i}, kind: http, retries: 0, url: 'http://127.0.0.1:{slow}/s{i}'}}\n"
                    for i in range(64))
    exec_policy = policy("exec64", "version: 1\nchecks:\n" + execs)
    http_policy = policy("http64", "version: 1\nchecks:\n" + https)
    gate_ms = {name: summary([check_passes(p)["gate_duration_ms"] for _ in range(RUNS)])
               for name, p in (("64 exec sleep 0.2", exec_policy), ("64 http (200 ms server)", http_policy))}
    times = hyperfine({"64 exec sleep 0.2": f"{BIN} check --policy {exec_policy}",
                       "64 http (200 ms server)": f"{BIN} check --policy {http_policy}",
                       "one sleep 0.2 (baseline)": "sleep 0.2",
                       # What this machine needs to start 64 processes at once, with no gate at all.
                       "shell: 64 sleep 0.2 & wait (baseline)": "bash -c 'for i in $(seq 64); do sleep 0.2 & done; wait'"})
    base = times["one sleep 0.2 (baseline)"]
    out = {name: {**t, "ratio_to_200ms": t["median"] / 0.2, "ratio_to_baseline": t["median"] / base["median"]}
           for name, t in times.items()}
    for name, g in gate_ms.items():
        out[name]["gate_in_process_ms"] = g
    shell = times["shell: 64 sleep 0.2 & wait (baseline)"]["median"]
    return out | {"ratio_exec64_over_shell": times["64 exec sleep 0.2"]["median"] / shell,
                  "target": "ratio_to_200ms <= 1.15; exec64 <= 1.05x the shell"}


def hang_containment():
    """3. One check against a target that never answers, timeout 2 s."""
    hole = peers.blackhole()
    path = policy("hang", f"version: 1\nchecks:\n  - {{name: hang, kind: tcp, timeout: 2s, retries: 0, "
                          f"targets: ['127.0.0.1:{hole}']}}\n")
    times = hyperfine({"bootgate check (timeout 2 s)": f"{BIN} check --policy {path}",
                       "curl --connect-timeout 2 (baseline)": f"curl -s --connect-timeout 2 http://127.0.0.1:{hole}/"},
                      ignore_failure=True)
    return times | {"target": "bootgate median <= 2.1 s"}


def wrk(url, headers=None):
    """One wrk run on `url` (http or https, connections kept alive) with `headers`."""
    argv = [peers.need("wrk", "wrk"), "-t2", "-c64", f"-d{WRK_SECONDS}s", "-s", f"{ROOT}/bench/wrk-report.lua"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    r = json.loads(line)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def load(url):
    return stats([wrk(url) for _ in range(RUNS)])


def loads(targets):
    """`load` of each of `targets` ({name: (url, headers)}), their runs interleaved so that
    what else the machine does falls on each alike."""
    runs = {name: [] for name in targets}
    for _ in range(RUNS):
        for name, (url, headers) in targets.items():
            runs[name].append(wrk(url, headers))
    return {name: stats(r) for name, r in runs.items()}


def stats(runs):
    return {"rps": summary([r["rps"] for r in runs]), "p50_ms": summary([r["p50_us"] / 1000 for r in runs]),
            "p99_ms": summary([r["p99_us"] / 1000 for r in runs]), "requests": sum(r["requests"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs)}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def rss_median(pids):
    samples = []
    for _ in range(RUNS):
        samples.append(sum(rss_kib(p) for p in pids) / 1024)
        time.sleep(0.1)
    return summary(samples)


def serve(path, name, url, context=None, headers=None, timeout=30.0, started=None):
    """Starts `bootgate run` on the policy at `path` (its files under TMP/name), calls
    `started` with the process if given, and waits (up to `timeout` s) until `url` answers
    200; returns the process and that answer's body."""
    daemon = peers.start([BIN, "run", "--policy", path, "--run-dir", f"{TMP}/{name}", "--state-dir",
                          f"{TMP}/{name}-state"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if started:
        started(daemon)
    request = urllib.request.Request(url, headers=headers or {})

    def fetch():
        with urllib.request.urlopen(request, timeout=1, context=context) as r:
            return r.status, r.read()

    def answers():
        try:
            return fetch()[0] == 200
        except OSError:
            return False

    peers.wait_until(f"bootgate endpoint {url}", answers, timeout)
    return daemon, fetch()[1]


def endpoint_and_footprint():
    """4. wrk on /api/v1/system/health and /metrics vs nginx serving the same JSON; 5. footprint."""
    api = peers.http_server()
    port = peers.free_port()
    path = policy("serve", f"""version: 1
runtime: {{interval: 5s}}
server: {{listen: '127.0.0.1:{port}'}}
checks:
  - {{name: storage, kind: disk, path: /, min_free_percent: 1}}
  - {{name: api, kind: tcp, targets: ['127.0.0.1:{api}']}}
""")
    health = f"http://127.0.0.1:{port}/api/v1/system/health"
    daemon, body = serve(path, "run", health)
    time.sleep(1)
    rss_start = rss_median([daemon.pid])

    www = f"{TMP}/www/api/v1/system"
    os.makedirs(www)
    with open(f"{www}/health", "wb") as f:
        f.write(body)
    nginx, nport = peers.nginx(TMP, "nginx", f"{TMP}/www")
    nginx_url = f"http://127.0.0.1:{nport}/api/v1/system/health"

    health_load = load(health)
    served = health_load["requests"]
    while served < 1_000_000:
        served += wrk(health)["requests"]
    rss_loaded = rss_median([daemon.pid])
    # One runtime round (interval 5 s) later: what the daemon keeps, not the burst's high-water mark.
    time.sleep(6)
    rss_after = rss_median([daemon.pid])
    metrics_load = load(f"http://127.0.0.1:{port}/metrics")
    nginx_load = load(nginx_url)
    nginx_pids = [nginx.pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout.split()]
    nginx_rss = rss_median(nginx_pids)

    idle_seconds = 60
    ticks = os.sysconf("SC_CLK_TCK")
    before, nginx_before = cpu_ticks([daemon.pid]), cpu_ticks(nginx_pids)
    time.sleep(idle_seconds)
    idle_cpu = (cpu_ticks([daemon.pid]) - before) / ticks / idle_seconds * 100
    nginx_idle = (cpu_ticks(nginx_pids) - nginx_before) / ticks / idle_seconds * 100
    peers.stop(daemon)
    peers.stop(nginx)

    endpoint = {
        "health": health_load, "metrics": metrics_load, "nginx_static_health": nginx_load,
        "ratio_health_to_nginx": health_load["rps"]["median"] / nginx_load["rps"]["median"],
        "ratio_metrics_to_nginx": metrics_load["rps"]["median"] / nginx_load["rps"]["median"],
        "target": ">= 0.5x nginx, p99 < 5 ms, >= 20000 req/s on health",
    }
    footprint = {
        "rss_after_start_mib": rss_start, "rss_right_after_load_mib": rss_loaded,
        "rss_after_requests_mib": rss_after, "health_requests_served": served,
        "rss_growth_mib": rss_after["median"] - rss_start["median"], "idle_cpu_percent": idle_cpu,
        "idle_seconds": idle_seconds, "binary_bytes": os.path.getsize(BIN),
        "baseline_nginx": {"rss_mib": nginx_rss, "idle_cpu_percent": nginx_idle,
                           "binary_bytes": os.path.getsize(peers.need("nginx", "nginx-light"))},
        "target": "RSS <= 12 MiB, growth <= 1 MiB, idle CPU <= 0.1 %",
    }
    return endpoint, footprint


def bounded_concurrency():
    """6. 64 checks of 200 ms each with `gate.max_concurrent: 8`: eight waves, so about 8 x 200 ms."""
    execs = "".join(f"  - {{name: s{i}, kind: exec, retries: 0, command: [sleep, '0.2']}}\n" for i in range(64))
    path = policy("exec64_max8", "version: 1\ngate: {max_concurrent: 8}\nchecks:\n" + execs)
    t = hyperfine({"64 exec sleep 0.2, max_concurrent 8": f"{BIN} check --policy {path}"})
    return {name: {**x, "ratio_to_1600ms": x["median"] / 1.6} for name, x in t.items()}


def negotiated(url, context):
    """The TLS version and cipher a client of this machine's OpenSSL (as wrk's) agrees on."""
    with socket.create_connection(("127.0.0.1", urllib.parse.urlsplit(url).port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return f"{s.version()} {s.cipher()[0]}"


def tls_endpoint():
    """7. wrk over TLS: health against nginx with the same certificate; /metrics with basic auth against without."""
    files = peers.pki(f"{TMP}/pki")
    context = ssl.create_default_context(cafile=files["ca.crt"])
    password = "bench scrape password"
    auth = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()}
    api = peers.http_server()
    extra = {"tls": "", "basic": f"basic_auth_users:\n  prometheus: '{peers.bcrypt('prometheus', password)}'\n"}
    daemons, urls, bodies = {}, {}, {}
    for name, users in extra.items():
        web = f"{TMP}/pki/{name}-web.yml"
        with open(web, "w") as f:
            f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n" + users)
        port = peers.free_port()
        path = policy(f"serve-{name}", f"""version: 1
runtime: {{interval: 5s}}
server: {{listen: '127.0.0.1:{port}', web_config: '{web}'}}
checks:
  - {{name: storage, kind: disk, path: /, min_free_percent: 1}}
  - {{name: api, kind: tcp, targets: ['127.0.0.1:{api}']}}
""")
        urls[name] = f"https://127.0.0.1:{port}"
        daemons[name], bodies[name] = serve(path, f"run-{name}", f"{urls[name]}/api/v1/system/health", context,
                                            auth if name == "basic" else None)
    try:
        urllib.request.urlopen(f"{urls['basic']}/metrics", timeout=5, context=context)
        raise RuntimeError("bootgate with basic_auth_users answered /metrics without a password")
    except urllib.error.HTTPError as e:
        if e.code != 401:
            raise

    www = f"{TMP}/www-tls/api/v1/system"
    os.makedirs(www)
    with open(f"{www}/health", "wb") as f:
        f.write(bodies["tls"])
    nginx, nport = peers.nginx(TMP, "nginx-tls", f"{TMP}/www-tls", tls=(files["server.crt"], files["server.key"]))
    urls["nginx"] = f"https://127.0.0.1:{nport}"
    versions = {"bootgate": negotiated(urls["tls"], context), "nginx": negotiated(urls["nginx"], context)}

    r = loads({"health_tls": (f"{urls['tls']}/api/v1/system/health", None),
               "nginx_tls_health": (f"{urls['nginx']}/api/v1/system/health", None),
               "metrics_tls": (f"{urls['tls']}/metrics", None),
               "metrics_tls_basic_auth": (f"{urls['basic']}/metrics", auth)})
    for proc in (*daemons.values(), nginx):
        peers.stop(proc)
    failed = {name: x["non2xx"] + x["socket_errors"] for name, x in r.items() if x["non2xx"] + x["socket_errors"]}
    if failed:
        raise RuntimeError(f"TLS load got errors, so it did not measure what it says: {failed}")
    return r | {
        "negotiated": versions,
        "ratio_tls_health_to_nginx_tls": r["health_tls"]["rps"]["median"] / r["nginx_tls_health"]["rps"]["median"],
        "ratio_metrics_basic_auth_to_plain": (r["metrics_tls_basic_auth"]["rps"]["median"]
                                              / r["metrics_tls"]["rps"]["median"]),
        "target": "health over TLS >= 0.5x nginx over TLS (as over plain HTTP); basic auth >= 0.9x without",
    }


def met(ok):
    return "met" if ok else "missed"


def check_runs(url):
    """bootgate_check_runs_total summed over checks from the /metrics at `url`: (runs by
    result, the time between asking and having the answer)."""
    asked = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as r:
        text = r.read().decode()
    answered = time.monotonic()
    runs = {}
    for line in text.splitlines():
        if line.startswith("bootgate_check_runs_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            runs[result] = runs.get(result, 0) + float(value)
    return runs, (asked + answered) / 2


def proc_sample(pid):
    """RSS (MiB), threads and open fds of `pid` now."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def scale_run(n, seconds):
    """`bootgate run` with `n` disk checks on / every 1 s; after the gate and one runtime
    round, the daemon's own CPU (not its children's), RSS, threads and fds over `seconds`,
    and the check results it finished meanwhile. Disk checks, because each goes through
    the blocking pool (the pool's bound is measured too) and because a thousand network
    checks a second would leave tens of thousands of loopback ports in TIME-WAIT, taking
    the machine's ephemeral ports from everything else."""
    port = peers.free_port()
    checks = "".join(f"  - {{name: disk{i}, kind: disk, path: /, min_free_percent: 1}}\n" for i in range(n))
    # No gate.max_concurrent: the gate runs all n at once, and the blocking pool must stay
    # bounded anyway.
    path = policy(f"scale{n}", f"version: 1\nruntime: {{interval: 1s}}\nserver: {{listen: '127.0.0.1:{port}'}}\n"
                               "checks:\n" + checks)
    metrics = f"http://127.0.0.1:{port}/metrics"
    # Threads and fds from the start on, every 0.1 s: the gate's high-water mark.
    warmup, warm = [], threading.Event()

    def sample_warmup(proc):
        def loop():
            while not warm.is_set() and proc.poll() is None:
                try:
                    warmup.append(proc_sample(proc.pid))
                except OSError:
                    pass
                warm.wait(0.1)
        threading.Thread(target=loop, daemon=True).start()

    daemon, _ = serve(path, f"scale{n}", f"http://127.0.0.1:{port}/api/v1/system/health", timeout=120,
                      started=sample_warmup)
    # Each check first runs one interval after the gate: wait for that round's results,
    # scraping seldom (a scrape of n checks is work for the daemon too).
    deadline = time.monotonic() + 120
    while sum(check_runs(metrics)[0].values()) < 2 * n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first runtime round of {n} checks did not finish within 120 s")
        time.sleep(0.5)
    warm.set()
    ticks = os.sysconf("SC_CLK_TCK")
    runs_start, asked_start = check_runs(metrics)
    started, cpu_start = time.monotonic(), cpu_ticks([daemon.pid])
    samples = []
    while time.monotonic() < started + seconds:
        samples.append(proc_sample(daemon.pid))
        time.sleep(min(1.0, max(0.0, started + seconds - time.monotonic())))
    ended, cpu_end = time.monotonic(), cpu_ticks([daemon.pid])
    runs_end, asked_end = check_runs(metrics)
    peers.stop(daemon)
    results = sum(runs_end.values()) - sum(runs_start.values())
    failed = sum(runs_end.get(r, 0) - runs_start.get(r, 0) for r in ("fail", "skipped"))
    cpu_percent = (cpu_end - cpu_start) / ticks / (ended - started) * 100
    results_per_s = results / (asked_end - asked_start)
    return {
        "checks": n, "seconds": ended - started, "cpu_percent_of_core": cpu_percent,
        "results": results, "results_failed": failed, "results_per_s": results_per_s,
        "cpu_per_result_us": cpu_percent / 100 / results_per_s * 1e6 if results_per_s else None,
        "rss_mib": summary([x["rss_mib"] for x in samples]),
        "threads_max": max(x["threads"] for x in samples), "fds_max": max(x["fds"] for x in samples),
        # Idle blocking threads outlive the gate by a few seconds; the window's last sample
        # tells those that stay from those that were ending.
        "threads_last": samples[-1]["threads"],
        "threads_max_gate_and_warmup": max((x["threads"] for x in warmup), default=0),
        "fds_max_gate_and_warmup": max((x["fds"] for x in warmup), default=0),
    }


def scale():
    """8. `bootgate run` with 100, then 1,000 checks every 1 s."""
    seconds = float(os.environ.get("BENCH_SCALE_SECONDS", "60"))
    rows = {str(n): scale_run(n, seconds) for n in (100, 1000)}
    small, large = rows["100"]["cpu_per_result_us"], rows["1000"]["cpu_per_result_us"]
    return {
        "checks": rows, "ratio_cpu_per_result_1000_over_100": large / small if small and large else None,
        "target": "1,000 checks <= 10 % of a core, RSS <= 40 MiB, CPU per result within 1.3x from 100 to 1,000",
    }


def fmt_s(s):
    return f"{s['median'] * 1000:.1f} ms (min {s['min'] * 1000:.1f}, max {s['max'] * 1000:.1f})"


def table(r):
    lines = []
    if "verdict_time" in r:
        lines += verdict_table(r["verdict_time"])
    if "parallel_overhead" in r:
        lines += parallel_table(r["parallel_overhead"])
    if "hang_containment" in r:
        lines += hang_table(r["hang_containment"])
    if "endpoint" in r:
        lines += endpoint_table(r["endpoint"], r["footprint"])
    if "bounded_concurrency" in r:
        lines += concurrency_table(r["bounded_concurrency"])
    if "tls_endpoint" in r:
        lines += tls_table(r["tls_endpoint"])
    if "scale" in r:
        lines += scale_table(r["scale"])
    return "\n".join(lines)


def verdict_table(v):
    lines = ["1. Verdict time, real components (exec to exit)"]
    lines.append(f"   bootgate check                   {fmt_s(v['bootgate_s'])}; gate alone "
                 f"{v['gate_in_process_ms']['median']:.2f} ms")
    b = v["baselines_s"]
    lines.append(f"   greenboot-shaped serial scripts  {fmt_s(b['greenboot_shaped_scripts'])}")
    lines.append(f"   the same commands, one bash line {fmt_s(b['one_bash_line'])}")
    lines.append(f"   greenboot-shaped serial scripts / bootgate {v['ratio_greenboot_shaped_over_bootgate']:.1f}x; "
                 f"one bash line / bootgate {v['ratio_one_bash_line_over_bootgate']:.1f}x")
    lines.append("   per check (ms): " + ", ".join(f"{k} {x['median']:.2f}" for k, x in v["per_check_ms"].items()))
    slowest = v["ratio_process_over_slowest_check"]
    lines.append(f"   whole process / slowest check {slowest:.2f}x (target <= 1.25: {met(slowest <= 1.25)}), "
                 f"/ gate {v['ratio_process_over_gate']:.2f}x")
    st = v["startup_s"]
    lines.append(f"   start-up: --version {fmt_s(st['version'])}; validate {fmt_s(st['validate'])}")
    lines.append(f"   check without tpm {fmt_s(st['check_without_tpm'])}; its gate alone "
                 f"{v['check_without_tpm_gate_ms']['median']:.2f} ms")
    lines.append(f"   minimal Rust binary --version {fmt_s(st['minimal_rust_version'])}; /bin/true {fmt_s(st['true'])}")
    version, check = v["ratio_version_over_minimal_rust"], v["ratio_check_without_tpm_minus_gate_over_minimal_rust"]
    lines.append(f"   --version / minimal Rust {version:.2f}x, check without tpm minus its gate / minimal Rust "
                 f"{check:.2f}x (target: within 2x a minimal Rust binary: {met(version <= 2 and check <= 2)})")
    return lines


def parallel_table(p):
    lines = ["2. Parallel overhead (64 checks of 200 ms)"]
    for name, t in p.items():
        if isinstance(t, dict):
            gate = f"; gate alone {t['gate_in_process_ms']['median']:.1f} ms" if "gate_in_process_ms" in t else ""
            lines.append(f"   {name:26} {fmt_s(t)}  ÷200 ms = {t['ratio_to_200ms']:.3f}{gate}")
    lines.append(f"   64 exec / shell baseline {p['ratio_exec64_over_shell']:.3f}x")
    return lines


def hang_table(h):
    lines = ["3. Hang containment (timeout 2 s)"]
    for name, t in h.items():
        if isinstance(t, dict):
            lines.append(f"   {name:38} {fmt_s(t)}")
    return lines


def load_line(name, x):
    return (f"   {name:22} {x['rps']['median']:9.0f} req/s (min {x['rps']['min']:.0f}, max {x['rps']['max']:.0f})"
            f"  p50 {x['p50_ms']['median']:.2f} ms  p99 {x['p99_ms']['median']:.2f} ms  non-2xx {x['non2xx']}")


def endpoint_table(e, f):
    lines = []
    lines.append(f"4. Endpoint (wrk -t2 -c64 -d{WRK_SECONDS}s, {RUNS} runs each)")
    lines += [load_line(name, e[name]) for name in ("health", "metrics", "nginx_static_health")]
    lines.append(f"   health / nginx {e['ratio_health_to_nginx']:.2f}x, metrics / nginx {e['ratio_metrics_to_nginx']:.2f}x")
    lines.append("5. Footprint")
    lines.append(f"   RSS after start {f['rss_after_start_mib']['median']:.1f} MiB, after {f['health_requests_served']:,} "
                 f"health requests {f['rss_after_requests_mib']['median']:.1f} MiB (growth {f['rss_growth_mib']:+.2f} MiB; "
                 f"{f['rss_right_after_load_mib']['median']:.1f} MiB right after the load)")
    lines.append(f"   idle CPU over {f['idle_seconds']} s: {f['idle_cpu_percent']:.3f} %; binary {f['binary_bytes'] / 2**20:.1f} MiB")
    b = f["baseline_nginx"]
    lines.append(f"   nginx (master+worker): RSS {b['rss_mib']['median']:.1f} MiB, idle CPU {b['idle_cpu_percent']:.3f} %, "
                 f"binary {b['binary_bytes'] / 2**20:.1f} MiB")
    return lines


def concurrency_table(c):
    lines = ["6. Bounded concurrency (64 checks of 200 ms, 8 at a time)"]
    for name, t in c.items():
        lines.append(f"   {name:38} {fmt_s(t)}  ÷1.6 s = {t['ratio_to_1600ms']:.3f}")
    return lines


def tls_table(t):
    lines = [f"7. Endpoint over TLS, keep-alive (wrk -t2 -c64 -d{WRK_SECONDS}s, {RUNS} runs each, interleaved)"]
    lines += [load_line(name, t[name]) for name in ("health_tls", "nginx_tls_health", "metrics_tls",
                                                    "metrics_tls_basic_auth")]
    lines.append(f"   health TLS / nginx TLS {t['ratio_tls_health_to_nginx_tls']:.2f}x, "
                 f"metrics basic auth / without {t['ratio_metrics_basic_auth_to_plain']:.2f}x")
    lines.append(f"   negotiated: bootgate {t['negotiated']['bootgate']}, nginx {t['negotiated']['nginx']}")
    return lines


def scale_table(c):
    rows = c["checks"]
    seconds = next(iter(rows.values()))["seconds"]
    lines = [f"8. Scale: bootgate run, disk checks on / every 1 s, {seconds:.0f} s after "
             "the gate and a first round"]
    lines.append("   checks  CPU % of a core  results/s  CPU/result  RSS MiB (min-max)   threads max (last)  fds   "
                 "gate + warm-up: threads  fds")
    for n, x in rows.items():
        per = f"{x['cpu_per_result_us']:.0f} µs" if x["cpu_per_result_us"] is not None else "-"
        failed = f"  ({x['results_failed']:.0f} of {x['results']:.0f} results failed or skipped)" \
            if x["results_failed"] else ""
        lines.append(f"   {int(n):6,}  {x['cpu_percent_of_core']:14.2f}  {x['results_per_s']:9.1f}  {per:>10}  "
                     f"{x['rss_mib']['median']:5.1f} ({x['rss_mib']['min']:.1f}-{x['rss_mib']['max']:.1f})"
                     f"  {x['threads_max']:11} ({x['threads_last']:4})  {x['fds_max']:4}  "
                     f"{x['threads_max_gate_and_warmup']:23}  "
                     f"{x['fds_max_gate_and_warmup']:4}{failed}")
    big, ratio = rows["1000"], c["ratio_cpu_per_result_1000_over_100"]
    lines.append(f"   CPU per result 1,000 / 100: " + (f"{ratio:.2f}x" if ratio else "-"))
    lines.append(f"   targets (release build): 1,000 checks <= 10 % of a core: {met(big['cpu_percent_of_core'] <= 10)}; "
                 f"RSS <= 40 MiB: {met(big['rss_mib']['median'] <= 40)}; CPU per result within 1.3x from 100 to "
                 f"1,000: {met(ratio is not None and ratio <= 1.3)}")
    return lines


CASES = ("verdict", "parallel", "hang", "endpoint", "concurrency", "tls", "scale")


def main():
    chosen = sys.argv[1:] or list(CASES)
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        print(f"bench: unknown case {', '.join(unknown)}; the cases are {', '.join(CASES)}", file=sys.stderr)
        return 2
    if not os.access(BIN, os.X_OK):
        print(f"bench: no bootgate binary at {BIN}; run `make bench` (it builds one)", file=sys.stderr)
        return 1
    started = time.monotonic()
    results = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
        "runs": RUNS,
        "command": "make bench" if chosen == list(CASES) else "bench/run.py " + " ".join(chosen),
    }
    if "verdict" in chosen:
        results["verdict_time"] = verdict_time()
    if "parallel" in chosen:
        results["parallel_overhead"] = parallel_overhead()
    if "hang" in chosen:
        results["hang_containment"] = hang_containment()
    if "endpoint" in chosen:
        results["endpoint"], results["footprint"] = endpoint_and_footprint()
    if "concurrency" in chosen:
        results["bounded_concurrency"] = bounded_concurrency()
    if "tls" in chosen:
        results["tls_endpoint"] = tls_endpoint()
    if "scale" in chosen:
        results["scale"] = scale()
    results["seconds"] = time.monotonic() - started
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/results.json", "w") as f:
        json.dump(results, f, indent=2)
    print(table(results))
    print(f"(all figures: median over {RUNS} runs; {results['seconds']:.0f} s; target/bench/results.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
