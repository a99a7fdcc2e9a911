"""Drives scripts/bench-startup: starts real `skybook` processes and measures them (see that script)."""
import os
import socket
import statistics
import subprocess
import time
import urllib.request

EXE = os.environ["SKYBOOK_BENCH_EXE"]
DIR = os.environ["SKYBOOK_BENCH_DIR"]
PG = os.environ["SKYBOOK_BENCH_PG_URL"]
SECRET = "bench-secret-of-this-deployment-0123456789"
RUNS = 7


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except Exception:
        return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(args, env, log):
    full_env = dict(os.environ, RUST_LOG="warn", **env)
    return subprocess.Popen([EXE, *args], env=full_env, stdout=log, stderr=log)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(cmd, env):
    subprocess.run([EXE, *cmd], env=dict(os.environ, **env), check=True, capture_output=True)


def time_to_ready(database_url, sandbox_url, name):
    """exec → first 200 from /ready, over RUNS starts on an already-migrated database (a pod restart)."""
    times, idle = [], []
    for i in range(RUNS):
        port = free_port()
        env = {
            "SKYBOOK_DATABASE_URL": database_url,
            "SKYBOOK_SECRET_KEY": SECRET,
            "SKYBOOK_PAYMENTS_URL": sandbox_url,
            "SKYBOOK_LISTEN": f"127.0.0.1:{port}",
            "SKYBOOK_SHUTDOWN_DRAIN": "0",
        }
        with open(f"{DIR}/{name}-{i}.log", "w") as log:
            began = time.perf_counter()
            proc = start(["serve", "--no-workers"], env, log)
            deadline = began + 30
            while get(f"http://127.0.0.1:{port}/ready", 0.2) != 200:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{name}: serve never became ready (see {DIR}/{name}-{i}.log)")
                time.sleep(0.002)
            times.append((time.perf_counter() - began) * 1000)
            time.sleep(2)
            idle.append(rss_kib(proc.pid))
            stop(proc)
    return times, idle


def idle_process(args, env, name, settle=3.0):
    with open(f"{DIR}/{name}.log", "w") as log:
        proc = start(args, env, log)
        time.sleep(settle)
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited (see {DIR}/{name}.log)")
        rss = rss_kib(proc.pid)
        stop(proc)
        return rss


def main():
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    with open(f"{DIR}/sandbox.log", "w") as log:
        sandbox = start(["sandbox", "--listen", f"127.0.0.1:{sandbox_port}", "--data-dir", f"{DIR}/sandbox"], {}, log)
    try:
        while get(f"{sandbox_url}/sandbox/stats") != 200:
            time.sleep(0.01)
        sqlite_url = f"sqlite://{DIR}/skybook.db"
        for url in (sqlite_url, PG):
            run(["migrate"], {"SKYBOOK_DATABASE_URL": url})

        print("startup benchmark: release build, 2-core machine, each `serve` started on a migrated database")
        rows = []
        for engine, url in (("SQLite", sqlite_url), ("PostgreSQL", PG)):
            times, idle = time_to_ready(url, sandbox_url, f"serve-{engine.lower()}")
            rows.append((engine, times, idle))
            print(
                f"serve on {engine:<10}  exec → /ready 200: median {statistics.median(times):6.1f} ms, "
                f"max {max(times):6.1f} ms over {len(times)} starts   (target < 300 ms)"
            )
        for engine, _, idle in rows:
            print(f"idle RSS of serve ({engine}): {statistics.median(idle) / 1024:5.1f} MiB   (target < 30 MiB)")

        worker_env = {
            "SKYBOOK_DATABASE_URL": PG,
            "SKYBOOK_SECRET_KEY": SECRET,
            "SKYBOOK_PAYMENTS_URL": sandbox_url,
        }
        worker = idle_process(["worker"], worker_env, "worker")
        print(f"idle RSS of worker (PostgreSQL): {worker / 1024:5.1f} MiB   (target < 30 MiB)")

        proxy_port = free_port()
        config = f"{DIR}/proxy.toml"
        with open(config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{proxy_port}"\n[[route]]\nprefix = "/payments"\nupstream = "{sandbox_url}"\n'
                f'token_url = "{sandbox_url}/oauth/token"\nclient_id = "skybook"\nclient_secret_env = "PAYMENTS_CLIENT_SECRET"\n'
            )
        proxy = idle_process(
            ["auth-proxy", "--config", config], {"PAYMENTS_CLIENT_SECRET": "sandbox-secret"}, "auth-proxy"
        )
        print(f"idle RSS of auth-proxy: {proxy / 1024:5.1f} MiB   (target < 30 MiB)")

        stripped = f"{DIR}/skybook.stripped"
        subprocess.run(["strip", "-o", stripped, EXE], check=True)
        print(
            f"binary: {os.path.getsize(EXE) / 1e6:5.1f} MB as built, "
            f"{os.path.getsize(stripped) / 1e6:5.1f} MB stripped   (target < 30 MB stripped)"
        )
    finally:
        stop(sandbox)


if __name__ == "__main__":
    main()
