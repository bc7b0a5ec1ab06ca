"""Shards (issue 16): one render split into bands that separate processes render into
the same KRO (--plan N, --shard I/N or auto, --finish), byte for byte what one run writes.
Read back with GDAL as well as compared byte for byte."""
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest

import render_synth
from conftest import GIGA, PHOTO, gdal_read, giga


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Six frames with seams and exposure differences (content seams decided per shard)."""
    d = tmp_path_factory.mktemp("shards")
    pto, _ = render_synth.make(PHOTO, d, frame_w=400, frame_h=300, canvas_scale=0.25)
    giga("render", pto, d / "single.kro", "--quiet")
    return d, pto


def sharded(pto, out, n, order=None, env=None):
    giga("render", pto, out, "--plan", n, "--quiet")
    for i in order if order is not None else range(n):
        giga("render", pto, out, "--shard", f"{i}/{n}", "--quiet", env=env)
    giga("render", pto, out, "--finish", "--quiet")


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_give_the_single_runs_bytes(project, tmp_path, n):
    d, pto = project
    out = tmp_path / "pano.kro"
    order = list(range(n))
    random.Random(n).shuffle(order)
    sharded(pto, out, n, order)
    assert out.read_bytes() == (d / "single.kro").read_bytes()
    # Only the output is left: no plan, part or marker.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pano.kro"]
    a = gdal_read(out, tmp_path)
    assert a.shape[2] == 4 and a[..., 3].max() == 255


def test_finish_names_the_missing_shards_and_writes_nothing(project, tmp_path):
    d, pto = project
    out = tmp_path / "pano.kro"
    giga("render", pto, out, "--plan", 4, "--quiet")
    giga("render", pto, out, "--shard", "2/4", "--quiet")
    # giga info on the output while shards render it: which are done.
    import json

    assert json.loads(giga("info", "--json", out).stdout) == {
        "file": str(out), "format": "giga shard plan", "shards": 4, "done": 1, "missing": [0, 1, 3]
    }
    assert "1 of 4 done" in giga("info", out).stdout
    r = giga("render", pto, out, "--finish", check=False)
    assert r.returncode == 1 and "shards 0, 1, 3 of 4 not done" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
    for i in (0, 1, 3):
        giga("render", pto, out, "--shard", f"{i}/4", "--quiet")
    giga("render", pto, out, "--finish", "--quiet")
    assert out.read_bytes() == (d / "single.kro").read_bytes()


def test_a_killed_shard_run_again_gives_the_same_bytes(tmp_path):
    """Shard 1 of 2 killed with SIGKILL half-way (frames of 1600x1200 on 25 MP: seconds a
    shard), then run again, as a Slurm requeue or a retried pod would."""
    pto, _ = render_synth.make(PHOTO, tmp_path / "p", frame_w=1600, frame_h=1200, canvas_scale=2.0, ext="jpg")
    giga("render", pto, tmp_path / "single.kro", "--quiet")
    out = tmp_path / "pano.kro"
    giga("render", pto, out, "--plan", 2, "--quiet")
    t = time.perf_counter()
    giga("render", pto, out, "--shard", "0/2", "--quiet")
    half = (time.perf_counter() - t) / 2  # shard 1 is as big: kill it half-way
    p = subprocess.Popen([GIGA, "render", str(pto), str(out), "--shard", "1/2", "--quiet"])
    time.sleep(half)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the shard ended before it could be killed"
    r = giga("render", pto, out, "--finish", check=False)
    assert r.returncode == 1 and "shard 1 of 2 not done" in r.stderr, r.stderr
    giga("render", pto, out, "--shard", "1/2", "--quiet")
    giga("render", pto, out, "--finish", "--quiet")
    assert out.read_bytes() == (tmp_path / "single.kro").read_bytes()


def test_shard_auto_reads_slurm_and_kubernetes(project, tmp_path):
    d, pto = project
    out = tmp_path / "pano.kro"
    giga("render", pto, out, "--plan", 3, "--quiet")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JOB_COMPLETION"))}
    # A Slurm array numbered from 5 (tasks 6 and 7: shards 1 and 2), then a Kubernetes index.
    for task in (6, 7):
        env = dict(base, SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN="5", SLURM_ARRAY_TASK_COUNT="3")
        giga("render", pto, out, "--shard", "auto", "--quiet", env=env)
    r = giga("render", pto, out, "--finish", check=False)
    assert r.returncode == 1 and "shard 0 of 3 not done" in r.stderr, r.stderr
    giga("render", pto, out, "--shard", "auto", "--quiet", env=dict(base, JOB_COMPLETION_INDEX="0"))
    giga("render", pto, out, "--finish", "--quiet")
    assert out.read_bytes() == (d / "single.kro").read_bytes()
    r = giga("render", pto, out, "--shard", "auto", check=False, env=base)
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID" in r.stderr


def test_shards_refuse_another_job_and_bad_arguments(project, tmp_path):
    d, pto = project
    out = tmp_path / "pano.kro"
    giga("render", pto, out, "--plan", 2, "--quiet")
    r = giga("render", pto, out, "--shard", "0/2", "--feather", "3", check=False)
    assert r.returncode == 1 and "another project or other options" in r.stderr, r.stderr
    for args, needle in (
        (["--shard", "2/2"], "expected I/N"),
        (["--shard", "0/3"], "the plan has 2 shards"),
        (["--plan", "0"], "1 to 100000"),
    ):
        r = giga("render", pto, out, *args, check=False)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
    r = giga("render", pto, tmp_path / "pano.tif", "--plan", "2", check=False)
    assert r.returncode == 2 and "KRO" in r.stderr
    r = giga("render", pto, tmp_path / "other.kro", "--shard", "0/2", check=False)
    assert r.returncode == 1 and "--plan N first" in r.stderr


SLURM_CONF = """ClusterName=gigatest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
SlurmctldPort={ctld}
SlurmdPort={slurmd}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm(tmp_path):
    """A single-node Slurm cluster on loopback (munge, slurmctld, slurmd from Debian's
    slurm-wlm), configured in a temporary folder; yields the environment its commands need.
    Skips, saying why, where the daemons can't start."""
    import shutil

    from conftest import free_port

    tools = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"]
    if not all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in tools):
        pytest.skip("Slurm (Debian's slurm-wlm and munge) is not installed: scripts/setup installs it")
    if os.geteuid() != 0:
        pytest.skip("slurmd needs root to start jobs here")
    d = tmp_path / "slurm"
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True)
    (d / "munge.key").write_bytes(os.urandom(1024))
    os.chmod(d / "munge.key", 0o400)
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(d=d, user="root", ctld=free_port(), slurmd=free_port(), cpus=os.cpu_count()))
    env = dict(os.environ, SLURM_CONF=str(conf))
    sbin = lambda t: shutil.which(t) or f"/usr/sbin/{t}"  # noqa: E731
    started = []

    def start(cmd):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        started.append(cmd[0])
        if r.returncode != 0:
            pytest.skip(f"{cmd[0]} could not start: {r.stderr.strip()[:200]}")

    try:
        start([sbin("munged"), "-f", f"--socket={d}/munge.sock", f"--key-file={d}/munge.key",
               f"--log-file={d}/munged.log", f"--pid-file={d}/munged.pid", f"--seed-file={d}/munge.seed"])
        start([sbin("slurmctld"), "-f", str(conf)])
        start([sbin("slurmd"), "-f", str(conf)])
        deadline = time.time() + 30
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout:
            if time.time() > deadline:
                pytest.skip("the Slurm daemons started but the node never became idle: " + (d / "slurmctld.log").read_text()[-300:])
            time.sleep(0.5)
        yield env
    finally:
        subprocess.run(["scancel", "-u", "root"], env=env, capture_output=True)
        for pid in ("slurmd.pid", "slurmctld.pid"):
            if (d / pid).exists():
                try:
                    os.kill(int((d / pid).read_text()), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
        subprocess.run([sbin("munged"), "-s", f"--socket={d}/munge.sock"], capture_output=True)


def test_a_slurm_job_array_and_a_finish_job(project, tmp_path, slurm):
    """The documented recipe on a real Slurm: a 4-task array with --shard auto, a finish
    job with --dependency=afterok; the KRO equals one run's, byte for byte."""
    d, pto = project
    out = tmp_path / "pano.kro"
    giga("render", pto, out, "--plan", 4, "--quiet")
    logs = f"--output={tmp_path}/slurm-%A_%a.out"
    sub = lambda *a: subprocess.run(["sbatch", "--parsable", logs, *a], env=slurm, capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
    array = sub("--array=0-3", "--cpus-per-task=1", "--wrap", f"{GIGA} render {pto} {out} --shard auto --quiet")
    finish = sub(f"--dependency=afterok:{array}", "--wrap", f"{GIGA} render {pto} {out} --finish --quiet")
    deadline = time.time() + 240
    while subprocess.run(["squeue", "-h", "-j", f"{array},{finish}"], env=slurm, capture_output=True, text=True).stdout.strip():
        assert time.time() < deadline, "the Slurm jobs did not end in 4 minutes"
        time.sleep(1)
    outputs = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert out.exists(), f"no output; the jobs said: {outputs}"
    assert out.read_bytes() == (d / "single.kro").read_bytes()
    assert len(list(tmp_path.glob("slurm-*.out"))) == 5 and outputs == ""


def test_the_plan_finds_the_seams_once_for_every_shard(project, tmp_path):
    """--plan runs the seam pre-pass and keeps its map; shards load it (they say nothing of
    finding seams) and a damaged map makes a shard find them again: the same bytes."""
    d, pto = project
    out = tmp_path / "pano.kro"
    r = giga("render", pto, out, "--plan", 2)
    assert "finding seams once" in r.stderr
    seams = tmp_path / ".pano.kro.giga-seams"
    assert seams.stat().st_size > 0
    r = giga("render", pto, out, "--shard", "0/2")
    assert "finding seams" not in r.stderr and "shard 0 of 2 done" in r.stderr, r.stderr
    seams.write_bytes(seams.read_bytes()[:-7])
    r = giga("render", pto, out, "--shard", "1/2")
    assert "finding seams" in r.stderr, r.stderr
    giga("render", pto, out, "--finish", "--quiet")
    assert out.read_bytes() == (d / "single.kro").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pano.kro"]
