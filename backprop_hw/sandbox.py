"""Bubblewrap sandboxes in which student notebooks are graded (`make grade`, `make gradescope-check`).

One sandbox per submission. Bubblewrap builds it (a fresh mount namespace with a read-only view of
the system and the Python environment, its own /tmp and /autograder tmpfs, an empty network
namespace with only loopback, its own PID, IPC and UTS namespaces) around a placeholder process,
and a cgroup of its own limits what the whole submission may use: memory, processes and one CPU.
A process that grades then forks a child that joins the sandbox: it enters the namespaces, roots
itself there, and drops to an unprivileged host uid with resource limits before it runs anything
of the submission. Forking a warm interpreter instead of starting one per submission saves the
2-3 s that importing otter, numpy and matplotlib costs.

Closing the sandbox kills every process in its cgroup and its PID namespace: nothing the submission
started outlives it. The sandboxed process talks to its parent through pipes only; the parent stays
outside and decides what to record.
"""

import ctypes
import io
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from backprop_hw.autograder import seccomp

# Host uids for sandboxed code, one per worker slot. No account owns them: they can read only
# world-readable files.
SANDBOX_UID_BASE = 20000
NAMESPACES = ("mnt", "net", "ipc", "uts", "pid")
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
# Docker's default capability set, which Gradescope's containers have: chown, dac_override, fowner,
# fsetid, kill, setgid, setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write,
# setfcap. Not sys_admin: no mounts, no namespaces, no escape.
GRADESCOPE_ROOT_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
GIB = 1 << 30
MIB = 1 << 20
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "backprop-grading"
# Memory the sandbox's own pages take on top of what a submission may use (its copy-on-write view
# of the warm interpreter, the tmpfs it writes).
CGROUP_HEADROOM = 256 * MIB

ENVIRONMENT = {
    "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython",
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
}


class SandboxUnavailable(RuntimeError):
    """No way to isolate student code here: grading must not go ahead."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    wall_seconds: float = 120.0  # the whole submission, its checks included (see trusted.Budget)
    cell_seconds: float = 15.0  # one notebook cell, after which the cell is interrupted
    memory_bytes: int = 1 * GIB  # all its processes together (cgroup), and each one's address space
    processes: int = 64  # all its processes together (cgroup), and RLIMIT_NPROC for the sandbox uid
    cpus: float = 1.0  # CPU time per second of all its processes together (cgroup)
    open_files: int = 256
    tmpfs_bytes: int = 256 * MIB  # each of /tmp and /autograder: the disk it may fill
    output_bytes: int = 64 * 1024  # stdout and stderr kept for the log


def find_bwrap() -> str:
    """The path of a working bwrap usable by this process, or SandboxUnavailable saying what is missing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and student code is never run unsandboxed. "
            "Install it (Debian/Ubuntu: apt-get install bubblewrap) or grade with ENGINE=docker "
            "where a Docker engine runs.")
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the bubblewrap engine needs root: it joins each sandbox's namespaces and hands the notebook "
            "to an unprivileged uid of its own. Run it with sudo, or use ENGINE=docker.")
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(f"bwrap is installed but cannot create namespaces here: {probe.stderr.strip()}")
    return bwrap


class Cgroup:
    """A cgroup (v1) per sandbox: memory, processes and CPU of everything in it, counted together.

    Where the controllers are missing or read-only, `Cgroup.create` returns None and each process
    keeps only its own rlimits (address space, and processes per uid); the grading notes say so.
    """

    CONTROLLERS = ("memory", "pids", "cpu", "freezer")

    def __init__(self, name: str, limits: Limits):
        self.closed: Optional[tuple[bool, bool]] = None
        self.peak_bytes: Optional[int] = None
        self.removed = False
        self.paths = [CGROUP_ROOT / controller / CGROUP_PARENT / name for controller in self.CONTROLLERS]
        for path in self.paths:
            path.mkdir(parents=True)
        _, pids, cpu, _ = self.paths
        self.limit_memory(limits.memory_bytes + CGROUP_HEADROOM)
        (pids / "pids.max").write_text(str(limits.processes))
        (cpu / "cpu.cfs_period_us").write_text("100000")
        (cpu / "cpu.cfs_quota_us").write_text(str(int(100000 * limits.cpus)))

    @classmethod
    def create(cls, name: str, limits: Limits) -> Optional["Cgroup"]:
        cls.remove_orphans()
        try:
            return cls(name, limits)
        except OSError:
            for controller in cls.CONTROLLERS:
                try:
                    (CGROUP_ROOT / controller / CGROUP_PARENT / name).rmdir()
                except OSError:
                    pass
            return None

    @classmethod
    def remove_orphans(cls) -> None:
        """Remove the empty cgroups of grading processes that are gone (killed before they could)."""
        for controller in cls.CONTROLLERS:
            for path in (CGROUP_ROOT / controller / CGROUP_PARENT).glob("*-*"):
                if not Path("/proc", path.name.split("-")[0]).exists():
                    try:
                        path.rmdir()
                    except OSError:  # not empty, or another grader removed it first
                        pass

    def open_for_joining(self) -> list[int]:
        """Descriptors of the cgroup's process lists: writing b"0" to each moves the writer in
        (usable after a chroot, where /sys is out of sight)."""
        return [os.open(path / "cgroup.procs", os.O_WRONLY) for path in self.paths]

    def limit_memory(self, limit: int) -> None:
        """Hold everything in the cgroup to `limit` bytes of memory, swap included (no swapping around
        the limit)."""
        memory = self.paths[0]
        (memory / "memory.limit_in_bytes").write_text(str(limit))
        if (memory / "memory.memsw.limit_in_bytes").exists():
            (memory / "memory.memsw.limit_in_bytes").write_text(str(limit))

    def counters(self) -> tuple[bool, bool]:
        """(ran out of memory, hit the process limit): read while the cgroup exists, kept after, with
        the most memory it ever held (`peak_bytes`)."""
        if self.closed is None:
            memory, pids = self.paths[0], self.paths[1]
            self.peak_bytes = int((memory / "memory.max_usage_in_bytes").read_text())
            oom = dict(line.split() for line in (memory / "memory.oom_control").read_text().splitlines())
            events = (pids / "pids.events").read_text().split()
            self.closed = (int(oom.get("oom_kill", 0)) > 0 or int((memory / "memory.failcnt").read_text()) > 0,
                           len(events) == 2 and int(events[1]) > 0)
        return self.closed

    def close(self) -> None:
        """Freeze everything in the cgroup, kill it, and remove the cgroup."""
        if self.removed:
            return
        self.counters()
        freezer = self.paths[3]
        (freezer / "freezer.state").write_text("FROZEN")
        for _ in range(100):
            pids = [int(pid) for pid in (freezer / "cgroup.procs").read_text().split()]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            (freezer / "freezer.state").write_text("THAWED")  # the killed processes die as they thaw
            if not pids:
                break
            time.sleep(0.01)
        for path in self.paths:
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except OSError:  # the last processes are still leaving
                    time.sleep(0.01)
        self.removed = True


def _readable_tree(path: Path) -> list[str]:
    """bwrap arguments that bind `path` read-only, with world-searchable parents (/root is 0700)."""
    arguments = []
    for parent in reversed(path.parents[:-1]):
        arguments += ["--perms", "0755", "--dir", str(parent)]
    return arguments + ["--ro-bind", str(path), str(path)]


def system_arguments() -> list[str]:
    """bwrap arguments for a read-only system, and nothing else of the host."""
    arguments = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), str(path)]
    return arguments


def python_arguments() -> list[str]:
    """bwrap arguments for a read-only view of this Python and its environment, wherever they live
    (a private home directory too: the sandbox's own parents of them are world-searchable). They
    come after the sandbox's own /tmp, which would otherwise hide an environment under /tmp."""
    arguments = []
    for prefix in sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                          Path(sys.executable).resolve().parent.parent}):
        if not prefix.is_relative_to("/usr"):
            arguments += _readable_tree(prefix)
    return arguments


class Holder:
    """A bubblewrap sandbox kept alive by a placeholder process until `close`, with its cgroup."""

    def __init__(self, bwrap: str, binds: list[str], limits: Limits):
        self.limits = limits
        self.cgroup = Cgroup.create(f"{os.getpid()}-{time.time_ns()}", limits)  # a name no other sandbox had
        info_read, info_write = os.pipe()
        self._stdin_read, self._stdin_write = os.pipe()
        command = [
            bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--info-fd", str(info_write),
            # /proc/sys hidden: its counters (open files, inodes) are the whole machine's, a channel
            # between sandboxes.
            *system_arguments(), "--proc", "/proc", "--tmpfs", "/proc/sys", "--dev", "/dev",
            "--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", "/autograder",
            *python_arguments(), *binds,
            "--", "/bin/sh", "-c", "echo ready; read _",
        ]
        self.process = subprocess.Popen(command, stdin=self._stdin_read, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, pass_fds=(info_write,))
        os.close(info_write)
        os.close(self._stdin_read)
        with os.fdopen(info_read, "rb") as info:
            text = info.read()
        ready = self.process.stdout.readline()
        if ready != b"ready\n":
            self.close()
            raise RuntimeError(f"the sandbox did not start: {self.process.stderr.read().decode(errors='replace')}")
        self.pid = json.loads(text)["child-pid"]

    def describe_end(self) -> Optional[str]:
        """What the cgroup saw of why the submission's processes ended, if anything."""
        if self.cgroup is None:
            return None
        out_of_memory, too_many_processes = self.cgroup.counters()
        if out_of_memory:
            return ("the notebook's processes ran out of memory (together they may use "
                    f"{self.limits.memory_bytes >> 20} MB)")
        if too_many_processes:
            return f"the notebook tried to run more than {self.limits.processes} processes at once"
        return None

    def close(self) -> None:
        """Kill every process of the sandbox (its cgroup, then its PID namespace's init)."""
        if self.process.returncode is not None:
            return
        if self.cgroup is not None:
            self.cgroup.close()
        for pid in (getattr(self, "pid", None), self.process.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        os.close(self._stdin_write)
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def enter(holder: Holder, uid: Optional[int], limits: Limits) -> int:
    """Move a forked, single-threaded child into the sandbox of `holder`; its child joins the cgroup.

    Returns in two processes, like fork: 0 in the sandboxed process, its limits set and its working
    directory /autograder; the pid of that process in the caller, which stays outside (root, but
    already in the sandbox's mount namespace) only to wait for it. The sandboxed process runs as
    `uid` with no capabilities; with `uid` None it plays Gradescope's root, whose capabilities are
    Docker's default set (GRADESCOPE_ROOT_CAPABILITIES) from its next exec on.
    """
    libc = _libc()
    last_capability = int(Path("/proc/sys/kernel/cap_last_cap").read_text())  # the sandbox hides /proc/sys
    joining = holder.cgroup.open_for_joining() if holder.cgroup is not None else []
    root = os.open(f"/proc/{holder.pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    namespaces = [os.open(f"/proc/{holder.pid}/ns/{name}", os.O_RDONLY) for name in NAMESPACES]
    for name, descriptor in zip(NAMESPACES, namespaces):
        _check(libc.setns(descriptor, 0), f"setns {name}")
        os.close(descriptor)
    # Joining a mount namespace does not move the root into bubblewrap's pivoted root: chroot there.
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    child = os.fork()  # only children of a setns(pid) caller are in the sandbox's PID namespace
    for descriptor in joining:  # the child, not this waiting parent, goes into the cgroup
        if not child:
            os.write(descriptor, b"0")
        os.close(descriptor)
    if child:
        return child
    os.setsid()
    limited = [(resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0),
               (resource.RLIMIT_AS, _address_space() + limits.memory_bytes)]
    if uid is not None:  # RLIMIT_NPROC does not bind root
        limited.append((resource.RLIMIT_NPROC, limits.processes))
    for limit, value in limited:
        resource.setrlimit(limit, (value, value))
    if uid is None:
        for capability in range(last_capability + 1):
            if capability not in GRADESCOPE_ROOT_CAPABILITIES:
                _check(libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"drop capability {capability}")
    else:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    seccomp.install()  # no network, no keyrings, no page-cache peeks (see backprop_hw.autograder.seccomp)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")  # after setresuid, which clears it
    status = Path("/proc/self/status").read_text()
    if uid is not None and any(line.split()[1].strip("0") for line in status.splitlines()
                               if line.startswith(("CapEff", "CapPrm"))):
        os._exit(70)  # never run student code with a capability left
    os.environ.clear()  # the process that forks this one starts with a minimal environment anyway
    os.environ.update(ENVIRONMENT)
    os.chdir("/autograder")
    return 0


def _address_space() -> int:
    """The current size of this process's address space, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class SandboxedRun:
    """What came out of one sandboxed process run by `run`."""

    output: bytes = b""  # the start of its stdout and stderr
    output_total: int = 0  # how many bytes it printed in all
    exit_code: int = 0  # as a shell reports it: 128 + N for signal N
    killed: bool = False  # stopped at the wall-clock limit
    cpu_seconds: float = 0.0  # the CPU time it and the processes it waited for used


def run(holder: Holder, uid: Optional[int], limits: Limits, payload: Callable[[], int]) -> SandboxedRun:
    """Run `payload()` in a fork inside `holder`'s sandbox as `uid`; collect its output and exit code.

    The payload's stdout and stderr go to a pipe read here (only the first `output_bytes` are
    kept), stdin is /dev/null, and every other descriptor is closed. The sandbox is killed when the
    payload ends, so nothing it started outlives it, or at the wall-clock limit.
    """
    deadline = time.monotonic() + limits.wall_seconds
    output_read, output_write = os.pipe()
    enterer = _fork_into(holder, uid, limits, output_write, (), (output_read,), payload)
    os.close(output_write)
    result, output = SandboxedRun(), bytearray()
    exit_code: Optional[int] = None
    while True:
        if exit_code is None:
            finished, status, usage = os.wait4(enterer, os.WNOHANG)
            if finished:
                exit_code, result.cpu_seconds = _exit_code(status), usage.ru_utime + usage.ru_stime
                holder.close()  # ends anything the payload left running, so the pipe closes
            elif not result.killed and time.monotonic() > deadline:
                result.killed = True
                holder.close()
        ready, _, _ = select.select([output_read], [], [], 0.05 if exit_code is None else 1.0)
        if ready:
            chunk = os.read(output_read, 1 << 16)
            if not chunk:
                break
            result.output_total += len(chunk)
            output += chunk[:max(0, limits.output_bytes - len(output))]
    os.close(output_read)
    if exit_code is None:
        _, status, usage = os.wait4(enterer, 0)
        exit_code, result.cpu_seconds = _exit_code(status), usage.ru_utime + usage.ru_stime
    result.exit_code = exit_code
    holder.close()
    result.output = bytes(output)
    return result


def _fork_into(holder: Holder, uid: Optional[int], limits: Limits, output: int, keep: tuple[int, ...],
               parent_ends: tuple[int, ...], payload: Callable[[], int]) -> int:
    """Fork a process that enters `holder`'s sandbox and runs `payload()` there with stdout and
    stderr on `output` and only `keep` open besides; return its pid. (`parent_ends` are the
    caller's ends of the pipes, closed in the child.)"""
    enterer = os.fork()
    if enterer:
        return enterer
    code = 71
    try:
        for descriptor in parent_ends:
            os.close(descriptor)
        child = enter(holder, uid, limits)
        if child == 0:
            _redirect(output, keep)
            code = payload()
            sys.stdout.flush()
        else:
            for descriptor in (*keep, output):
                os.close(descriptor)
            code = _exit_code(os.waitpid(child, 0)[1])
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _redirect(output: int, keep: tuple[int, ...]) -> None:
    """stdin from /dev/null, stdout and stderr to `output`, every other descriptor but `keep` closed."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    low = 3
    for descriptor in sorted(keep):
        os.closerange(low, descriptor)
        low = descriptor + 1
    os.closerange(low, 65536)
    sys.stdin = open(0, closefd=False)
    sys.stdout = sys.stderr = io.TextIOWrapper(os.fdopen(1, "wb"), errors="replace")


def describe_exit(code: int) -> str:
    """`exit code N`, or `signal NAME` for the shell-style codes above 128."""
    if code > 128:
        try:
            return f"signal {signal.Signals(code - 128).name}"
        except ValueError:
            return f"signal {code - 128}"
    return f"exit code {code}"


class Forked:
    """`payload(requests_fd, answers_fd)` forked into a sandbox, seen from outside like a Popen.

    For a grader that keeps its tests outside: it writes requests to `stdin` and reads answers
    from `stdout`. The payload's own stdout and stderr go to a pipe drained here (the first
    `output_bytes` are kept in `output`, until `mute`); `kill` ends the whole sandbox.
    """

    def __init__(self, holder: Holder, uid: Optional[int], limits: Limits, payload: Callable[[int, int], int]):
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        output_read, output_write = os.pipe()
        self.pid = _fork_into(holder, uid, limits, output_write, (requests_read, answers_write),
                              (requests_write, answers_read, output_read), lambda: payload(requests_read, answers_write))
        for descriptor in (requests_read, answers_write, output_write):
            os.close(descriptor)
        self.holder = holder
        self.stdin = os.fdopen(requests_write, "wb")
        self.stdout = os.fdopen(answers_read, "rb")
        self.output, self.output_total, self.muted = bytearray(), 0, False
        self._output_pipe, self._keep = output_read, limits.output_bytes
        self._lock = threading.Lock()
        self._drain = threading.Thread(target=self._keep_output, daemon=True)
        self._drain.start()
        self.returncode: Optional[int] = None

    def _read_output(self) -> bool:
        """Keep what the pipe holds now (the lock held); False at its end."""
        try:
            chunk = os.read(self._output_pipe, 1 << 16)
        except BlockingIOError:  # nothing there (the other reader took it)
            return True
        if chunk and not self.muted:
            self.output_total += len(chunk)
            self.output += chunk[:max(0, self._keep - len(self.output))]
        return bool(chunk)

    def _keep_output(self) -> None:
        os.set_blocking(self._output_pipe, False)
        while True:
            select.select([self._output_pipe], [], [], 0.5)
            with self._lock:
                if not self._read_output():
                    os.close(self._output_pipe)
                    self._output_pipe = None
                    return

    def mute(self) -> None:
        """Keep what the process printed so far, and nothing after (from here on it may hold hidden data)."""
        with self._lock:
            while self._output_pipe is not None and select.select([self._output_pipe], [], [], 0)[0] \
                    and self._read_output():
                pass
            self.muted = True

    def describe_end(self) -> Optional[str]:
        return self.holder.describe_end()

    def kill(self) -> None:
        self.holder.close()

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = _exit_code(os.waitpid(self.pid, 0)[1])
            self.holder.close()
            self._drain.join()
            self.stdin.close()
            self.stdout.close()
        return self.returncode


def _exit_code(status: int) -> int:
    """A wait status as a shell reports it: 128 + N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
