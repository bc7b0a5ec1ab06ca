"""Benchmark: `giga serve` beside IIPImage (Debian's iipimage-server behind
lighttpd's FastCGI) serving the same multi-resolution TIFF of the generated
400-megapixel panorama, in one run: wrk on loopback, tile requests (256-px
tiles at every scale) and random region requests (regions of 500 to 4000 px
scaled to 512 px wide), printing requests per second and p50/p99 latency."""
import os
import random
import re
import shutil
import subprocess

from common import GIGA, free_port, panorama, parser, wait_for_port


def wait_port(port, timeout=30):
    if not wait_for_port(port, timeout):
        raise SystemExit(f"nothing listens on {port}")


def wrk(base, paths, seconds, d, name):
    lua = d / f"{name}.lua"
    plist = ",\n".join('"' + p.replace('"', '\\"') + '"' for p in paths)
    lua.write_text(
        "paths = {" + plist + "}\ncounter = 0\n"
        "request = function()\n  counter = counter + 1\n  return wrk.format('GET', paths[(counter % #paths) + 1])\nend\n"
    )
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(lua), base], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def lat(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat(50), lat(99), int(errors.group(1)) if errors else 0


def main():
    ap = parser(__doc__)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height
    tif = d / "pano.tif"
    if not tif.exists():
        print("making the multi-resolution TIFF ...", flush=True)
        subprocess.run([GIGA, "convert", str(src), str(tif), "--pyramid", "--quiet"], check=True)
    rng = random.Random(7)
    tiles, regions = [], []
    for _ in range(2000):
        s = 2 ** rng.randrange(0, 7)
        span = 256 * s
        tx, ty = rng.randrange(0, -(-w // span)), rng.randrange(0, -(-h // span))
        x, y = tx * span, ty * span
        rw, rh = min(span, w - x), min(span, h - y)
        tiles.append(f"{x},{y},{rw},{rh}/{-(-rw // s)},/0/default.jpg")
        rw, rh = rng.randrange(min(500, w // 2), min(4000, w)), rng.randrange(min(500, h // 2), min(4000, h))
        x, y = rng.randrange(0, w - rw), rng.randrange(0, h - rh)
        regions.append(f"{x},{y},{rw},{rh}/512,/0/default.jpg")

    procs = []
    gport, fport, lport = free_port(), free_port(), free_port()
    procs.append(subprocess.Popen([GIGA, "serve", str(tif), "--bind", f"127.0.0.1:{gport}"], stderr=subprocess.DEVNULL))
    env = dict(os.environ, FILESYSTEM_PREFIX=str(d) + "/", VERBOSITY="0", MAX_IMAGE_CACHE_SIZE="256")
    subprocess.run(["spawn-fcgi", "-a", "127.0.0.1", "-p", str(fport), "-F", "2", "-P", str(d / "iipsrv.pid"), "--", "/usr/lib/iipimage-server/iipsrv.fcgi"], env=env, check=True, capture_output=True)
    conf = d / "lighttpd.conf"
    conf.write_text(f"""server.port = {lport}
server.bind = "127.0.0.1"
server.document-root = "{d}"
server.modules = ("mod_fastcgi")
server.errorlog = "{d}/lighttpd.err"
fastcgi.server = ("/fcgi-bin/iipsrv.fcgi" => (("host" => "127.0.0.1", "port" => {fport}, "check-local" => "disable")))
""")
    procs.append(subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], stderr=subprocess.DEVNULL))
    try:
        wait_port(gport)
        wait_port(lport)
        bases = {
            "giga serve": (f"http://127.0.0.1:{gport}", "/iiif/2/pano/"),
            "IIPImage 1.1 (lighttpd, 2 FastCGI)": (f"http://127.0.0.1:{lport}", "/fcgi-bin/iipsrv.fcgi?IIIF=pano.tif/"),
        }
        import urllib.request
        for name, (base, prefix) in bases.items():
            with urllib.request.urlopen(base + prefix + tiles[0]) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("image/jpeg"), name
        results = {}
        for kind, paths in [("tiles", tiles), ("regions", regions)]:
            for name, (base, prefix) in bases.items():
                wrk(base, [prefix + p for p in paths[:50]], 2, d, "warm")  # warm the caches a little
                results[(kind, name)] = wrk(base, [prefix + p for p in paths], a.seconds, d, kind)
        print(f"\n{w}x{h} panorama, multi-resolution TIFF, wrk 2 threads x 8 connections, {a.seconds} s each")
        print(f"{'workload':<9} {'server':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for (kind, name), (rps, p50, p99, err) in results.items():
            print(f"{kind:<9} {name:<36} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f} {err:>8}")
    finally:
        for p in procs:
            p.terminate()
        pid = d / "iipsrv.pid"
        if pid.exists():
            # spawn-fcgi -F 2 writes one line per FastCGI process.
            for line in pid.read_text().split():
                try:
                    os.kill(int(line), 15)
                except (OSError, ValueError):
                    pass
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
