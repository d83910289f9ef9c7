"""Loopback peers and private components the benchmarks measure against.

Every process started here runs in its own session and is stopped by its
process group at exit; every port is a free 127.0.0.1 port; every directory
is a fresh temp dir.
"""

import atexit
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

_started = []


def _stop_all():
    for proc in reversed(_started):
        stop(proc)


atexit.register(_stop_all)


def start(argv, **kw):
    """Starts argv in its own session; it is stopped at exit."""
    proc = subprocess.Popen(argv, start_new_session=True, **kw)
    _started.append(proc)
    return proc


def stop(proc, grace=10.0):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s")


def bindable(port):
    """Whether a listener could bind 127.0.0.1:`port` now. A port nobody listens on can
    still be taken: by a connection's local end, or one in TIME-WAIT (tens of thousands
    after the scale case, for a minute)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def need(binary, package):
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    if not path:
        raise RuntimeError(f"{binary} missing: install the Debian package {package} (build/deps.sh)")
    return path


def nginx(tmp, name, root, tls=None):
    """nginx-light with one worker serving `root` as static files on a free port, over TLS
    with `tls` = (cert, key) if given; returns (process, port)."""
    port = free_port()
    listen, ssl = f"127.0.0.1:{port}", ""
    if tls:
        # Connections live as long as the load tool keeps them, as bootgate's do, so
        # neither side does a handshake in the middle of a run (nginx's default closes
        # a connection after 1,000 requests).
        listen += " ssl"
        ssl = (f"    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};\n"
               "    ssl_protocols TLSv1.2 TLSv1.3;\n    keepalive_requests 10000000;\n")
    conf = f"{tmp}/{name}.conf"
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server {{
    listen {listen};
{ssl}    root {root};
    location / {{ default_type application/json; }}
  }}
}}
""")
    proc = start([need("nginx", "nginx-light"), "-c", conf, "-g", "daemon off;"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(name, lambda: connects(port))
    return proc, port


def _openssl(cwd, *args):
    subprocess.run([need("openssl", "openssl"), *args], cwd=cwd, check=True, capture_output=True)


def pki(directory):
    """A CA and a server certificate it signed for 127.0.0.1, P-256, made by openssl in
    `directory`; returns the paths by name (ca.crt, server.crt, server.key)."""
    os.makedirs(directory, exist_ok=True)
    key = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out")
    _openssl(directory, *key, "ca.key")
    _openssl(directory, "req", "-x509", "-key", "ca.key", "-subj", "/CN=bootgate bench ca", "-days", "2",
             "-out", "ca.crt")
    with open(f"{directory}/server.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl(directory, *key, "server.key")
    _openssl(directory, "req", "-new", "-key", "server.key", "-subj", "/CN=bench server", "-out", "server.csr")
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "2",
             "-extfile", "server.ext", "-out", "server.crt")
    return {n: f"{directory}/{n}" for n in ("ca.crt", "server.crt", "server.key")}


def bcrypt(user, password):
    """A bcrypt hash (cost 10) of `password` made by htpasswd, as operators make them."""
    out = subprocess.run([need("htpasswd", "apache2-utils"), "-nbBC", "10", user, password],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().split(":", 1)[1]


class Swtpm:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bgbench-tpm")
        while True:
            self.port = free_port()
            if self.port < 65535 and bindable(self.port + 1):
                break
        self.proc = start([need("swtpm", "swtpm"), "socket", "--tpm2", "--tpmstate", f"dir={self.dir}",
                           "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                           "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
                           "--flags", "not-need-init,startup-clear"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("swtpm", lambda: connects(self.port))
        self.tcti = f"swtpm:host=127.0.0.1,port={self.port}"


class Dockerd:
    """A private engine: own data, exec root, socket; never the system's."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bgb", dir="/tmp")
        self.sock = f"{self.dir}/sock"
        with open(f"{self.dir}/daemon.json", "w") as f:
            json.dump({"deprecated-key-path": f"{self.dir}/key.json"}, f)
        self.log = open(f"{self.dir}/log", "w")
        self.proc = start([need("dockerd", "docker.io"), "--config-file", f"{self.dir}/daemon.json",
                           "--data-root", f"{self.dir}/data", "--exec-root", f"{self.dir}/exec",
                           "--pidfile", f"{self.dir}/pid", "-H", f"unix://{self.sock}",
                           "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                           "--ip-masq=false", "--userland-proxy=false"],
                          stdout=self.log, stderr=self.log)
        wait_until("dockerd", lambda: self.docker("info", check=False).returncode == 0, 60)
        self.containers = []
        atexit.register(self.cleanup)

    def docker(self, *args, check=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = self.dir
        return subprocess.run(["/usr/bin/docker", "-H", f"unix://{self.sock}", *args], env=env,
                              capture_output=True, text=True, check=check, timeout=120)

    def busybox_image(self):
        root = tempfile.mkdtemp(prefix="bgbench-img")
        os.makedirs(f"{root}/bin")
        os.makedirs(f"{root}/tmp")
        shutil.copy(need("busybox", "busybox-static"), f"{root}/bin/busybox")
        for tool in ("sh", "sleep", "true", "false"):
            os.symlink("busybox", f"{root}/bin/{tool}")
        tar = subprocess.run(["tar", "-C", root, "-c", "."], capture_output=True, check=True).stdout
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = self.dir
        subprocess.run(["/usr/bin/docker", "-H", f"unix://{self.sock}", "import", "-", "bench/busybox:1"],
                       input=tar, env=env, check=True, capture_output=True)
        shutil.rmtree(root)
        return "bench/busybox:1"

    def run_healthy(self, name, image):
        self.docker("run", "-d", "--name", name, "--network", "none", "--health-cmd", "true",
                    "--health-interval", "1s", image, "sleep", "3600")
        self.containers.append(name)
        wait_until(f"container {name} healthy", lambda: self.docker(
            "inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() == "healthy", 60)

    def cleanup(self):
        for name in self.containers:
            self.docker("rm", "-f", name, check=False)
        self.containers = []
        stop(self.proc, 20)
        self.log.close()
        subprocess.run(["umount", "-R", f"{self.dir}/exec"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


def http_server(delay=0.0, body=b'{"status":"ok"}'):
    """A loopback HTTP server answering 200 after `delay`; returns its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if delay:
                time.sleep(delay)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = _Threaded(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def blackhole():
    """A 127.0.0.1 port whose connects never complete: backlog 0 and a full accept queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(16):
        s = socket.socket()
        s.settimeout(0.1)
        try:
            s.connect(("127.0.0.1", port))
            fillers.append(s)
        except OSError:
            s.close()
            break
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        raise RuntimeError("blackhole port accepted a connection")
    except socket.timeout:
        pass
    finally:
        probe.close()
    blackhole.keep = (listener, fillers)
    return port
