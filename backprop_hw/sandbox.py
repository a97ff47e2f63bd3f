"""Bubblewrap sandboxes in which student notebooks are graded.

One sandbox per submission. Bubblewrap builds it (a fresh mount namespace with a read-only view of
the system and the Python environment, its own /tmp and /autograder tmpfs, an empty network
namespace with only loopback, its own PID, IPC and UTS namespaces) around a placeholder process.
The process that grades then joins it: a warm Python fork enters the sandbox's namespaces, roots
itself there, and drops to an unprivileged host uid with resource limits before it touches the
submission. Forking a warm interpreter instead of starting one per submission saves the 2-3 s that
importing otter, numpy and matplotlib costs.

Killing the placeholder ends the sandbox's PID namespace, and with it every process the submission
started. Nothing outside the sandbox runs student code.

The trust boundary is the `run` call: the sandboxed process gets a pipe for JSON lines and its
stdout, nothing else, and the caller stays outside to decide what to record. `make grade` writes
results only from what comes over that pipe; a grader that must not trust the notebook's process
at all keeps the tests on its side of the pipe and asks the sandbox only for values.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

# Host uids for sandboxed code, one per worker slot so that the process limit of one submission
# does not starve another. No account owns them: they can read only world-readable files.
SANDBOX_UID_BASE = 20000
NAMESPACES = ("mnt", "net", "ipc", "uts", "pid")
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
# chown, dac_override, dac_read_search, fowner, kill, setgid, setuid: what a root harness needs to
# lock its files away and run the notebook as another user. Not sys_admin: no mounts, no escape.
GRADESCOPE_ROOT_CAPABILITIES = frozenset({0, 1, 2, 3, 5, 6, 7})
GIB = 1 << 30
MIB = 1 << 20
MAX_CONTROL_BYTES = 16 * MIB


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

    wall_seconds: float = 60.0  # the whole submission, after which the sandbox is killed
    cell_seconds: float = 15.0  # one notebook cell, after which the cell is interrupted
    memory_bytes: int = 1 * GIB  # address space added to the warm interpreter (RLIMIT_AS)
    processes: int = 64  # RLIMIT_NPROC for the sandbox uid
    open_files: int = 256
    tmpfs_bytes: int = 256 * MIB  # each of /tmp and /autograder
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
    """bwrap arguments for a read-only view of this Python and its environment. They come after the
    sandbox's own /tmp, which would otherwise hide an environment that lives under /tmp."""
    arguments = []
    for prefix in sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}):
        if not prefix.is_relative_to("/usr"):
            arguments += _readable_tree(prefix)
    return arguments


class Holder:
    """A bubblewrap sandbox kept alive by a placeholder process until `close`."""

    def __init__(self, bwrap: str, binds: list[str], limits: Limits, pass_fds: tuple[int, ...] = ()):
        info_read, info_write = os.pipe()
        self._stdin_read, self._stdin_write = os.pipe()
        command = [
            bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--info-fd", str(info_write),
            *system_arguments(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", "/autograder",
            *python_arguments(), *binds,
            "--", "/bin/sh", "-c", "echo ready; read _",
        ]
        self.process = subprocess.Popen(command, stdin=self._stdin_read, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, pass_fds=(info_write, *pass_fds))
        os.close(info_write)
        os.close(self._stdin_read)
        with os.fdopen(info_read, "rb") as info:
            text = info.read()
        ready = self.process.stdout.readline()
        if ready != b"ready\n":
            self.close()
            raise RuntimeError(f"the sandbox did not start: {self.process.stderr.read().decode(errors='replace')}")
        self.pid = json.loads(text)["child-pid"]

    def close(self) -> None:
        """Kill the sandbox's init, which ends every process in its PID namespace."""
        if self.process.returncode is not None:
            return
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


def enter(holder_pid: int, uid: Optional[int], limits: Limits) -> int:
    """Move a forked, single-threaded child into the sandbox of `holder_pid`.

    Returns in two processes, like fork: 0 in the sandboxed process, its limits set and its working
    directory /autograder; the pid of that process in the caller, which stays outside (root, but
    already in the sandbox's mount namespace) only to wait for it. The sandboxed process runs as
    `uid` with no capabilities; with `uid` None it plays Gradescope's root, who may hand files to
    and become another user (GRADESCOPE_ROOT_CAPABILITIES) from its next exec on, and nothing else.
    """
    libc = _libc()
    root = os.open(f"/proc/{holder_pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    namespaces = [os.open(f"/proc/{holder_pid}/ns/{name}", os.O_RDONLY) for name in NAMESPACES]
    for name, descriptor in zip(NAMESPACES, namespaces):
        _check(libc.setns(descriptor, 0), f"setns {name}")
        os.close(descriptor)
    # Joining a mount namespace does not move the root into bubblewrap's pivoted root: chroot there.
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    child = os.fork()  # only children of a setns(pid) caller are in the sandbox's PID namespace
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
        for capability in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
            if capability not in GRADESCOPE_ROOT_CAPABILITIES:
                _check(libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"drop capability {capability}")
    else:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")  # after setresuid, which clears it
    status = Path("/proc/self/status").read_text()
    if uid is not None and any(line.split()[1].strip("0") for line in status.splitlines()
                               if line.startswith(("CapEff", "CapPrm"))):
        os._exit(70)  # never run student code with a capability left
    os.environ.clear()  # nothing of the instructor's environment (tokens, paths) reaches the sandbox
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
class Run:
    """What came out of one sandboxed process."""

    control_lines: list[bytes] = field(default_factory=list)  # what it wrote on its control pipe
    output: bytes = b""  # the start of its stdout and stderr
    output_total: int = 0  # how many bytes it printed in all
    exit_code: int = 0  # as a shell reports it: 128 + N for signal N
    killed: bool = False  # stopped at the wall-clock limit


def run(holder: Holder, uid: Optional[int], limits: Limits, payload: Callable[[int], int]) -> Run:
    """Run `payload(control_fd)` in a fork inside `holder`'s sandbox as `uid`; collect what it says.

    The payload's stdout and stderr go to a pipe read here (only the first `output_bytes` are
    kept), stdin is /dev/null, and every other descriptor is closed. The sandbox is killed when the
    payload ends, so nothing it started outlives it, or at the wall-clock limit.
    """
    started = time.monotonic()
    control_read, control_write = os.pipe()
    output_read, output_write = os.pipe()
    enterer = _fork_into(holder, uid, limits, output_write, (control_write,), (control_read, output_read),
                         lambda: payload(control_write))
    os.close(control_write)
    os.close(output_write)
    return _collect(enterer, control_read, output_read, holder, started + limits.wall_seconds, limits.output_bytes)


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
        child = enter(holder.pid, uid, limits)
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


def _collect(enterer: int, control: int, output: int, holder: Holder, deadline: float, output_bytes: int) -> Run:
    """Read the pipes until the process ends or the deadline passes, then end the sandbox."""
    result = Run()
    control_data, output_data = bytearray(), bytearray()
    exit_code: Optional[int] = None
    open_pipes = {control, output}
    while open_pipes:
        if exit_code is None:
            finished, status = os.waitpid(enterer, os.WNOHANG)
            if finished:
                exit_code = _exit_code(status)
                holder.close()  # ends anything the payload left running, so the pipes close
            elif not result.killed and time.monotonic() > deadline:
                result.killed = True
                holder.close()
        ready, _, _ = select.select(list(open_pipes), [], [], 0.05 if exit_code is None else 1.0)
        for pipe in ready:
            chunk = os.read(pipe, 1 << 16)
            if not chunk:
                open_pipes.discard(pipe)
                os.close(pipe)
            elif pipe == output:
                result.output_total += len(chunk)
                output_data += chunk[:max(0, output_bytes - len(output_data))]
            elif len(control_data) < MAX_CONTROL_BYTES:
                control_data += chunk
    if exit_code is None:
        exit_code = _exit_code(os.waitpid(enterer, 0)[1])
    holder.close()
    result.exit_code = exit_code
    result.control_lines = bytes(control_data).splitlines()
    result.output = bytes(output_data)
    return result


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
    `output_bytes` are kept in `output`); `kill` ends the whole sandbox.
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
        self.output, self.output_total = bytearray(), 0
        self._drain = threading.Thread(target=self._keep_output, args=(output_read, limits.output_bytes), daemon=True)
        self._drain.start()
        self.returncode: Optional[int] = None

    def _keep_output(self, descriptor: int, keep: int) -> None:
        while chunk := os.read(descriptor, 1 << 16):
            self.output_total += len(chunk)
            self.output += chunk[:max(0, keep - len(self.output))]
        os.close(descriptor)

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

