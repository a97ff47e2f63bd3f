"""The system calls a student's process may not make, refused by a seccomp filter.

One filter, installed under no_new_privs (which needs no privilege) in every student's process: in
make grade's sandboxes (`backprop_hw.sandbox.enter`) and on Gradescope (`gradescope_run`), where the
container's root lacks CAP_SYS_ADMIN and so cannot give the notebook a network namespace of its own.
It refuses, with EPERM:

- sockets of every family but AF_UNIX (AF_INET, AF_INET6, AF_PACKET, AF_NETLINK, ...): no network,
  namespace or not; and io_uring_setup, whose rings can make sockets without socket();
- the kernel's keyrings (add_key, request_key, keyctl), which belong to a uid and not to a
  namespace, so a notebook could leave data there for the next one graded as the same uid (Docker's
  default profile refuses them too);
- the calls that tell, without timing, which files are in the page cache every sandbox shares
  (mincore, cachestat, and preadv2/pwritev2, whose RWF_NOWAIT does).

It is a classic BPF program that checks the audit architecture first (on x86_64 and aarch64; any
other architecture, or the x32 ABI, is refused everything; elsewhere no filter is installed).
"""

import ctypes
import os
import platform
import struct
from typing import Optional

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
AF_UNIX = 1
# {machine: (audit architecture, the calls refused, the number of socket())}. The calls: add_key,
# request_key, keyctl, mincore, cachestat, preadv2, pwritev2, io_uring_setup.
ARCHITECTURES = {"x86_64": (0xC000003E, (248, 249, 250, 27, 451, 327, 328, 425), 41),
                 "aarch64": (0xC00000B7, (217, 218, 219, 232, 451, 286, 287, 425), 198)}
LOAD, EQUAL, AT_LEAST, RETURN = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, RET|K
ALLOW, REFUSE = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO(EPERM)
# Offsets in struct seccomp_data: the call's number, the architecture, and the low half of its first
# argument (both architectures are little-endian), which is socket()'s family.
NUMBER, ARCHITECTURE, FIRST_ARGUMENT = 0, 4, 16


def program() -> Optional[bytes]:
    """The filter as a classic BPF program, or None on an architecture not listed."""
    if platform.machine() not in ARCHITECTURES:
        return None
    architecture, calls, socket = ARCHITECTURES[platform.machine()]
    # Each instruction is (code, jump if true, jump if false, value); a jump skips that many
    # instructions. The last two return ALLOW and REFUSE: `to(...)` counts the way there.
    steps: list[tuple[int, object, object, int]] = [
        (LOAD, 0, 0, ARCHITECTURE), (EQUAL, 0, "refuse", architecture),
        (LOAD, 0, 0, NUMBER), (AT_LEAST, "refuse", 0, 0x40000000),  # the x32 ABI
        *[(EQUAL, "refuse", 0, call) for call in calls],
        (EQUAL, 0, "allow", socket), (LOAD, 0, 0, FIRST_ARGUMENT), (EQUAL, "allow", "refuse", AF_UNIX),
        (RETURN, 0, 0, ALLOW), (RETURN, 0, 0, REFUSE)]
    last = len(steps) - 1

    def to(target: object, at: int) -> int:
        return target if isinstance(target, int) else {"allow": last - 1, "refuse": last}[target] - at - 1

    return b"".join(struct.pack("HBBI", code, to(true, at), to(false, at), value)
                    for at, (code, true, false, value) in enumerate(steps))


def install() -> None:
    """Set no_new_privs and install the filter in this process (inherited by all it starts);
    OSError if the kernel refuses. Nothing on an architecture not listed."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    code = program()
    if code is None:
        return

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(Program(len(code) // 8, code)), 0, 0),
           "seccomp")


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
