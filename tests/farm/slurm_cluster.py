"""A throw-away single-node SLURM cluster for tests: munged, slurmctld and slurmd from Debian's
packages (slurm-wlm, munge), every file of theirs under one temporary directory.

    with SlurmCluster.create() as cluster:          # starts munged, slurmctld, slurmd
        cluster.run(["sbatch", "--wrap", "true"])    # any client, with the cluster's environment

Design (see docs/farm.md, "The SLURM test harness"):

* State only under ``root`` (a fresh ``tempfile.mkdtemp`` by default): configuration, munge key and
  socket, spool, state, logs, pid files. Nothing under /etc, /run or /var is read or written
  (except /etc/slurm/plugstack.conf is *not* used either: the cluster has its own, empty one).
* Network: when the machine allows it (root, ``unshare --net``), the daemons and every client run in
  a private network namespace that holds only a loopback interface, so nothing can listen on or
  talk to any other address. Otherwise everything is configured for 127.0.0.1 only.
* Every daemon runs in the foreground as a child of this process; ``stop()`` cancels the jobs, then
  ends each daemon by its process id (SIGTERM, then SIGKILL after a timeout), then any process that
  carries this cluster's marker variable in its environment (job steps that slurmd started) or that
  lives in its network namespace, again by pid. Every wait has a timeout.
* Known traps handled here:
  - munged refuses a socket directory that is not world-executable: ``root`` is made 0755.
  - slurmd needs ``SlurmdSpoolDir`` on a filesystem that allows exec: checked at start.
  - the Snakemake SLURM job-step plugin drops every ``SLURM_*`` variable (``SLURM_CONF`` included)
    before its nested ``srun``: a wrapper ``srun`` (and wrappers for the other clients) on ``PATH``
    restores it.
  - without accounting (no slurmdbd) ``sacct`` cannot answer: Snakemake must be run with
    ``--slurm-status-command squeue``, and ``MinJobAge`` must stay large (jobs remain visible to
    squeue for that long after they end).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("srun", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "sacct")
MARKER = "NA64_FARM_TEST_CLUSTER"
SYSTEM_PATH = os.pathsep.join(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])


class ClusterError(RuntimeError):
    """The cluster could not be started or did not behave; the message has the daemons' logs."""


def find(exe: str) -> str | None:
    """A program on PATH, or in the system directories (/usr/sbin is not on every user's PATH)."""
    return shutil.which(exe) or shutil.which(exe, path=SYSTEM_PATH)


def missing_binaries() -> list[str]:
    """The SLURM and munge programs that are not installed (empty when the cluster can start)."""
    return [
        exe for exe in (*DAEMONS, "srun", "sbatch", "squeue", "scontrol") if not shutil.which(exe)
    ]


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    missing = missing_binaries()
    if missing:
        return f"SLURM/munge not installed (missing {', '.join(missing)}): run .ci/install-farm.sh"
    if os.geteuid() != 0:
        return "the single-node SLURM test cluster needs root (slurmd launches job steps)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def _exec_allowed(directory: Path) -> bool:
    probe = directory / "exec-probe.sh"
    probe.write_text("#!/bin/sh\nexit 0\n")
    probe.chmod(0o755)
    try:
        return subprocess.run([str(probe)], timeout=10).returncode == 0
    except OSError:
        return False
    finally:
        probe.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class SlurmCluster:
    """One slurmctld + one slurmd (node = this machine) + munged, all state under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        cpus: int | None = None,
        memory_mb: int | None = None,
        isolate_network: bool = True,
        start_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or max(1000, min(8000, _memory_mb() // 2))
        self.isolate_network = isolate_network
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        self.bin = self.root / "bin"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.logs = self.root / "log"
        self._procs: dict[str, subprocess.Popen] = {}
        self._netns_holder: subprocess.Popen | None = None
        self._netns_inode: int | None = None
        self._nsenter = "nsenter"
        self.network = "host loopback"

    # ------------------------------------------------------------------ public API

    @classmethod
    @contextlib.contextmanager
    def create(
        cls, root: Path | None = None, *, keep: bool = False, **kwargs
    ) -> Iterator[SlurmCluster]:
        """Start a cluster under ``root`` (default: a new temporary directory), stop it on exit,
        whatever happens, and remove the temporary directory unless ``keep``."""
        own_root = root is None
        root = Path(tempfile.mkdtemp(prefix="na64-slurm-")) if own_root else Path(root)
        cluster = cls(root, **kwargs)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
            if own_root and not keep:
                shutil.rmtree(root, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients and Snakemake: the wrappers first on PATH, SLURM_CONF, marker."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["SLURM_CONF"] = str(self.conf)
        env[MARKER] = str(self.root)
        return env

    def prefix(self) -> list[str]:
        """Command prefix that puts a process into the cluster's network namespace (or nothing)."""
        if self._netns_holder is None:
            return []
        return [self._nsenter, f"--net=/proc/{self._netns_holder.pid}/ns/net", "--"]

    def run(self, command: Sequence[str], *, timeout: float = 60.0, check: bool = True, **kwargs):
        """Run a client command against the cluster (captured text output)."""
        kwargs.setdefault("env", self.env)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run([*self.prefix(), *command], timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise ClusterError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise ClusterError(reason)
        try:
            self._layout()
            if self.isolate_network:
                self._start_netns()
            self._write_config()
            self._start_munged()
            self._start_daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
            self._wait_for(self._controller_up, "slurmctld to answer")
            self._start_daemon("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
            self._wait_for(self._node_idle, f"node {self.node} to become idle")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel jobs, then end every process this cluster started, by pid. Never raises."""
        if "slurmctld" in self._procs and _pid_alive(self._procs["slurmctld"].pid):
            with contextlib.suppress(Exception):
                self.run(["scancel", "--full", "--user", str(os.getuid())], timeout=10, check=False)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    out = self.run(
                        ["squeue", "-h", "-t", "RUNNING,COMPLETING"], timeout=10, check=False
                    )
                    if out.returncode != 0 or not out.stdout.strip():
                        break
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                self._terminate(proc.pid, proc)
        for pid in self._stray_pids():
            self._terminate(pid)
        if self._netns_holder is not None:
            self._terminate(self._netns_holder.pid, self._netns_holder)
            self._netns_holder = None

    def logs_text(self, tail: int = 40) -> str:
        """The last lines of every daemon log (for failure messages)."""
        parts = []
        for log in sorted(self.logs.glob("*.log")) if self.logs.is_dir() else []:
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {log.name} ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ setup

    def _layout(self) -> None:
        for sub in ("etc", "bin", "munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # munged: the socket directory must be world-executable (and not writable by others);
        # the same for every directory above it that it checks.
        self.root.chmod(0o755)
        (self.root / "munge").chmod(0o755)
        if not _exec_allowed(self.root / "spool"):
            raise ClusterError(
                f"{self.root} is on a filesystem mounted noexec: slurmd cannot run job scripts "
                "from its SlurmdSpoolDir there; pass a root on an executable filesystem"
            )
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        # Wrappers that restore SLURM_CONF: the job-step plugin strips SLURM_* before `srun`.
        for exe in CLIENTS:
            real = find(exe)
            if real is None:
                continue
            wrapper = self.bin / exe
            wrapper.write_text(
                "#!/bin/sh\n"
                f"# {exe} of the test cluster under {self.root}\n"
                f'SLURM_CONF="{self.conf}"; export SLURM_CONF\n'
                f'exec "{real}" "$@"\n'
            )
            wrapper.chmod(0o755)
        (self.root / "etc" / "plugstack.conf").write_text("")

    def _start_netns(self) -> None:
        """A process that holds a new network namespace with only `lo`, up.

        Slurm resolves addresses with getaddrinfo(AI_ADDRCONFIG), which finds nothing when the only
        IPv4 address is 127.0.0.1; a second loopback address (127.0.0.2 on `lo`) fixes that and
        keeps every address of the namespace a loopback one.
        """
        unshare, nsenter, ip = find("unshare"), find("nsenter"), find("ip")
        if not (unshare and nsenter and ip):
            return
        holder = subprocess.Popen(
            [
                unshare,
                "--net",
                "--",
                "sh",
                "-c",
                f"{ip} link set lo up && {ip} addr add 127.0.0.2/8 dev lo"
                " && echo up && exec sleep 100000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        line = ""
        with contextlib.suppress(Exception):
            line = _readline_with_timeout(holder, 10)
        if line.strip() != "up":
            self._terminate(holder.pid, holder)
            return  # namespaces not allowed here: stay on host loopback
        self._netns_holder = holder
        self._netns_inode = os.stat(f"/proc/{holder.pid}/ns/net").st_ino
        self._nsenter = nsenter
        self.network = "private network namespace (loopback only)"

    def _write_config(self) -> None:
        r = self.root
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        self.conf.write_text(
            f"""# single-node test cluster, generated by tests/farm/slurm_cluster.py
ClusterName=na64test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={r}/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
# Jobs stay visible to squeue this long after they end: the executor's status checks need that.
MinJobAge=600
KillWait=5
InactiveLimit=0
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _daemon_env(self) -> dict[str, str]:
        env = self.env
        env["PATH"] = os.pathsep.join([str(self.bin), SYSTEM_PATH, os.environ.get("PATH", "")])
        return env

    def _start_daemon(self, name: str, command: list[str]) -> None:
        log = open(self.logs / f"{name}.stdout", "ab")  # noqa: SIM115 (closed by the child's exit)
        try:
            self._procs[name] = subprocess.Popen(
                [*self.prefix(), *command],
                env=self._daemon_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,
            )
        finally:
            log.close()

    def _start_munged(self) -> None:
        m = self.root / "munge"
        self._start_daemon(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={m / 'munge.key'}",
                f"--pid-file={self.root / 'run' / 'munged.pid'}",
                f"--seed-file={m / 'munged.seed'}",
                f"--log-file={self.logs / 'munged.log'}",
                "--num-threads=2",
            ],
        )
        self._wait_for(self._munge_ok, "munged to answer")

    # ------------------------------------------------------------------ waits

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ClusterError(
                        f"{name} exited with {proc.returncode} while waiting for {what}\n"
                        + self._all_logs()
                    )
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                if ready():
                    return
            time.sleep(0.3)
        raise ClusterError(
            f"timed out after {self.start_timeout:.0f} s waiting for {what}\n" + self._all_logs()
        )

    def _all_logs(self) -> str:
        text = self.logs_text()
        for out in sorted(self.logs.glob("*.stdout")):
            text += f"\n--- {out.name} ---\n" + out.read_text(errors="replace")[-4000:]
        return text

    def _munge_ok(self) -> bool:
        if not self.munge_socket.exists():
            return False
        enc = subprocess.run(
            ["munge", f"--socket={self.munge_socket}", "-n"], capture_output=True, timeout=10
        )
        if enc.returncode != 0:
            return False
        dec = subprocess.run(
            ["unmunge", f"--socket={self.munge_socket}"],
            input=enc.stdout,
            capture_output=True,
            timeout=10,
        )
        return dec.returncode == 0

    def _controller_up(self) -> bool:
        return self.run(["scontrol", "ping"], timeout=10, check=False).stdout.count("UP") > 0

    def _node_idle(self) -> bool:
        out = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], timeout=10, check=False).stdout.split()
        return len(out) >= 2 and out[1] in ("idle", "mix", "alloc")

    # ------------------------------------------------------------------ teardown

    def _stray_pids(self) -> list[int]:
        """Processes still alive that this cluster started indirectly (job steps, jobs)."""
        me = os.getpid()
        ancestors = {me}
        with contextlib.suppress(Exception):
            pid = me
            while pid > 1:
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
                ancestors.add(pid)
        holder = self._netns_holder.pid if self._netns_holder else None
        marker = f"{MARKER}={self.root}".encode()
        strays = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in ancestors or pid == holder:
                continue
            try:
                ours = False
                if self._netns_inode is not None:
                    ours = os.stat(f"/proc/{pid}/ns/net").st_ino == self._netns_inode
                if not ours:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        ours = marker in f.read().split(b"\0")
            except OSError:
                continue
            if ours:
                strays.append(pid)
        return strays

    def _terminate(self, pid: int, proc: subprocess.Popen | None = None) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return
            elif not _pid_alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def _readline_with_timeout(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
        return proc.stdout.readline()
