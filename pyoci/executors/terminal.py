"""Terminal executor (config.md "Process": terminal, consoleSize; runc's --console-socket).

With ``process.terminal`` the process gets a pseudo-terminal made from the *container's*
devpts instance (``/dev/ptmx`` after the mounts, so the slave is ``/dev/pts/N`` inside,
not a host pty). The slave becomes the controlling terminal and stdio of the process; the
master goes back to the runtime over the sync channel, which passes it on: to the unix
socket of ``--console-socket`` (SCM_RIGHTS, as runc does, for conmon and containerd's
shim), or to `pyoci run`'s own relay when it runs in the foreground. Everything here is
ioctls the stdlib exposes (fcntl, termios); no ctypes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
import sys
import termios

from pyoci import signals as signal
from pyoci import syscalls as sc
from pyoci.sync import send_fds, unix_stream_socket

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

TIOCGPTN = 0x80045430   # <asm-generic/ioctls.h>: get the pty number
TIOCSPTLCK = 0x40045431  # lock/unlock the slave
TIOCSCTTY = 0x540E


TIOCGPTPEER = 0x5441  # _IO('T', 0x41), Linux >= 4.13: an fd of the slave, from the master
_PTMX = os.makedev(5, 2)
_PTY_SLAVE_MAJORS = range(136, 144)  # UNIX98_PTY_SLAVE_MAJOR .. + 7 (devices.txt)


def open_pty(size: tuple[int, int] | None = None) -> tuple[int, int]:
    """A new pty from /dev/ptmx of the container: (master fd, slave fd).

    The slave is reached from the master with TIOCGPTPEER, never by its /dev/pts/N path,
    which the container (or a sibling sharing its /dev) could have replaced -- runc 1.2.8's
    fix for CVE-2025-52565 (GHSA-qw9x-cqr3-wc7r). The master is checked to be a ptmx."""
    master = sc.open_file("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(master)
        if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == _PTMX):
            raise OSError(errno.ENOTTY, "/dev/ptmx in the container is not the pty "
                                        "multiplexer (character device 5:2)")
        sc.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        if size is not None:
            set_size(master, *size)
        slave = _peer(master)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def _peer(master: int) -> int:
    try:
        return int(sc.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTTY):
            raise
    # Before 4.13: by path, without following a link, and checked to be that very slave.
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    fd = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not (stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in _PTY_SLAVE_MAJORS
            and os.minor(st.st_rdev) == number % 256):
        os.close(fd)
        raise OSError(errno.ENOTTY, f"/dev/pts/{number} is not the pty slave")
    return fd


def set_size(fd: int, rows: int, cols: int) -> None:
    sc.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def become_controlling(fd: int, uid: int, gid: int) -> None:
    """The slave ``fd`` as the controlling terminal of this session (made by the caller:
    every init and exec'd process starts one, terminal or not) and as fds 0-2 (runc's
    dupStdio); the slave is handed to the process's user so it can reopen /dev/tty."""
    try:
        sc.fchown(fd, uid, gid)
        sc.ioctl(fd, TIOCSCTTY, 0)
        for target in (0, 1, 2):
            sc.dup2(fd, target)
    finally:
        if fd > 2:
            os.close(fd)


def send_to_console_socket(path: str, master: int) -> None:
    """runc's protocol: connect to the unix socket and send the master with SCM_RIGHTS
    (one byte of payload naming nothing in particular)."""
    sock = unix_stream_socket()
    try:
        sock.connect(path)
        send_fds(sock, b"/dev/ptmx", [master])
    finally:
        sock.close()


def relay(master: int, pidfd: int, on_exit: Callable[[], None] | None = None) -> None:
    """`pyoci run` / `exec -t` in the foreground: our terminal in raw mode, bytes copied
    both ways, window size kept in step (SIGWINCH), the terminal restored at the end.
    Returns when the process has exited and its output is drained.

    Writes to the master never block: a process that does not read its terminal fills the
    pty's input buffer, and a blocking write would then hang us past its exit. Input waits
    in a queue, the master is watched for writability only while the queue holds
    something, and input stops being forwarded once the process is gone. Output that our
    stdout refuses (a closed pipe) is dropped; we still wait for the process."""
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        import tty

        tty.setraw(stdin)

    def resize(*_: object) -> None:
        try:
            cols, rows = os.get_terminal_size(stdin)
            if rows and cols:  # a terminal without a size keeps process.consoleSize
                set_size(master, rows, cols)
        except OSError:
            pass

    previous = signal.signal(signal.SIGWINCH, resize) if saved is not None else None
    resize()
    os.set_blocking(master, False)
    pending = b""
    reading = [master, pidfd, stdin]
    exited = False
    show = True
    try:
        while True:
            writing = [master] if pending and not exited else []
            ready, can_write, _ = select.select(reading, writing, [], 0.1 if exited else None)
            if not ready and not can_write and exited:
                return  # the process is gone and nothing more arrived
            if pidfd in ready:
                exited = True
                reading.remove(pidfd)
                if stdin in reading:
                    reading.remove(stdin)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    data = None
                except OSError:  # EIO: every slave fd is closed
                    return
                if data == b"":
                    return
                if data and show:
                    try:
                        os.write(stdout, data)
                    except BrokenPipeError:
                        show = False
            if stdin in ready and stdin in reading:  # (not dropped above at the exit)
                data = os.read(stdin, 65536)
                if data:
                    pending += data
                else:
                    reading.remove(stdin)  # EOF on our side; keep showing output
            if can_write and pending:
                try:
                    pending = pending[os.write(master, pending):]
                except BlockingIOError:
                    pass
                except OSError:
                    pending = b""
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, previous or signal.SIG_DFL)
        if on_exit:
            on_exit()
