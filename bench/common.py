"""What the benchmarks share: arguments, the generated panorama, and running
a command while measuring its wall time and peak RSS (wait4's ru_maxrss)."""
import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GIGA = str(ROOT / "target" / "release" / "giga")
PY = sys.executable


def parser(doc):
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=20000)
    ap.add_argument("--height", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=str(ROOT / "bench-out"))
    ap.add_argument("--keep", action="store_true", help="keep the generated panorama")
    return ap


def panorama(a):
    """The generated RGBA KRO for the arguments (made once), read once so it sits in the page cache."""
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    src = d / f"pano-{a.width}x{a.height}.kro"
    if not src.exists():
        print(f"generating {src.name} ({a.width * a.height / 1e6:.0f} MP RGBA, {a.width * a.height * 4 / 1e9:.1f} GB) from real photos ...", flush=True)
        subprocess.run([PY, str(HERE / "mosaic.py"), str(src), "--width", str(a.width), "--height", str(a.height)], check=True)
    subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)
    return d, src


def _anon_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd, anon=None):
    """Runs cmd; returns (seconds, peak RSS in MB). Exits with its stderr if it fails.
    With a list `anon`, also appends the peak anonymous memory in MB (RssAnon,
    sampled every 10 ms: what RSS counts minus mapped files)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while anon is not None:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _anon_kb(p.pid))
        time.sleep(0.01)
    else:
        _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr.read().decode()}")
    if anon is not None:
        anon.append(peak / 1024)
    return dt, usage.ru_maxrss / 1024


def free_port():
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds=20):
    """Waits until something listens on loopback `port`; whether it did."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
