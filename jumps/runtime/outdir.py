"""The output directory of a run: created if needed, locked for the run's lifetime, cleaned.

One run at a time per directory. Rank 0 creates ``OUT/.jumps-lock`` with ``O_CREAT | O_EXCL``
(atomic on local filesystems, NFS v3+ and Lustre) holding its pid, host, start time and the
identity of its host and pid namespace, and refreshes the file's mtime every
:data:`HEARTBEAT_SECONDS` from a thread (the heartbeat). Another run finding the lock refuses
with the holder's pid, host and start time, unless the holder is dead: on the same host (same
boot and pid namespace) when its pid is gone or belongs to a process started later; elsewhere
when the heartbeat is older than :data:`STALE_SECONDS`. Ages are measured against the file
server's clock (the mtime of a file just touched), so client clocks need not agree. A stale
lock is broken with a one-line note. Limits: docs/design.md, "The MPI model".
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from ..errors import ConfigError, RunFailure
from .io import clean_leftovers, new_id

LOCK_FILE = ".jumps-lock"
# The holder refreshes the lock's mtime this often; a lock from another host whose mtime is
# older than STALE_SECONDS is presumed dead (10 missed heartbeats: a stalled file server or a
# suspended job, not a dead one, must not lose its lock).
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused
    pid from the lock's holder."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _host_identity() -> str:
    """The boot and pid namespace of this process: equal only where pids mean the same."""
    parts = []
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(source).read_text().strip() if "boot" in source
                         else os.readlink(source))
        except OSError:
            parts.append("?")
    return " ".join(parts)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def release(path: Path, token: str) -> None:
    """Remove the lock of ``path`` if it is the one with ``token`` (any rank of the run that
    holds it, before MPI_Abort ends rank 0 without its cleanup)."""
    lock = Path(path) / LOCK_FILE
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return
    if isinstance(holder, dict) and holder.get("token") == token:
        lock.unlink(missing_ok=True)


def _when(epoch: float) -> str:
    moment = time.localtime(epoch)
    same_day = time.localtime()[:3] == moment[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", moment)


class OutputDirectory:
    """``OUT`` for one run (rank 0): :meth:`open` creates and locks it, :meth:`close` releases
    it and removes directories it created if the run left them empty."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = self.path / LOCK_FILE
        self.token = new_id()
        self.created: list[Path] = []
        self.held = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- opening and closing ---------------------------------------------------------------

    def open(self) -> None:
        """Create the directory (and missing parents), take the lock, remove leftovers."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError("--out", f"{self.path} exists and is not a directory")
        missing = []
        parent = self.path
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        if missing and not parent.is_dir():  # a wrong --out, not a failing disk: exit 2
            raise ConfigError("--out", f"cannot create {missing[-1]}: {parent} is not a directory")
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise RunFailure("--out", f"cannot create {directory}: {error.strerror}") from None
            self.created.append(directory)
        self._acquire()
        self.held = True
        clean_leftovers(self.path)
        self._thread = threading.Thread(target=self._beat, name="jumps-lock-heartbeat",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Release the lock (if held and still ours); remove the directories this run created
        if they are empty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.held and self._holder_token() == self.token:
            self.lock.unlink(missing_ok=True)
        self.held = False
        for directory in reversed(self.created):
            try:
                directory.rmdir()
            except OSError:  # not empty (a result, checkpoints) or gone: keep it
                break
        self.created.clear()

    def check(self) -> None:
        """Before committing a result: the lock must still be this run's."""
        holder = self._read()
        for _ in range(3):  # a network filesystem may fail a read now and then
            if holder:
                break
            time.sleep(0.5)
            holder = self._read()
        if not self.held or self.lost or holder is None or holder.get("token") != self.token:
            who = (f" (now held by pid {holder.get('pid')} on host {holder.get('host')})"
                   if holder else "")
            raise RunFailure("--out", f"this run lost its lock on {self.path}{who}: "
                                      "the result was not written")

    # -- the lock --------------------------------------------------------------------------

    def _acquire(self) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "token": self.token, "identity": _host_identity(),
                  "proc_start": _proc_start(os.getpid()), "argv": " ".join(sys.argv)[:500]}
        for _ in range(3):
            try:
                handle = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._break_if_stale()
                continue
            except OSError as error:
                raise RunFailure("--out", f"cannot create the lock {self.lock}: "
                                          f"{error.strerror}") from None
            with os.fdopen(handle, "w") as file:
                file.write(json.dumps(record) + "\n")
                file.flush()
                os.fsync(file.fileno())
            return
        raise ConfigError("--out", f"{self.path} is in use (its lock {self.lock} keeps "
                                   "reappearing)")

    def _read(self, path: Path | None = None) -> dict | None:
        """The lock's record; ``{}`` if unreadable or empty, None if there is no lock."""
        try:
            text = (path or self.lock).read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            holder = json.loads(text)
        except ValueError:
            return {}
        return holder if isinstance(holder, dict) else {}

    def _holder_token(self) -> str | None:
        holder = self._read()
        return holder.get("token") if holder else None

    def _break_if_stale(self) -> None:
        """The lock exists: raise 'in use' naming its holder, or break it if the holder is dead."""
        holder = self._read()
        try:
            mtime = self.lock.stat().st_mtime
        except FileNotFoundError:
            return  # released meanwhile: try again
        age = self._server_now() - mtime
        reason = self._stale_reason(holder, age)
        started = holder.get("started") if holder else None
        started = started if isinstance(started, (int, float)) else mtime
        who = (f"pid {holder.get('pid')} on host {holder.get('host')} since {_when(started)}"
               if holder else "a process whose lock file is still being written")
        if reason is None:
            raise ConfigError("--out", f"{self.path} is in use by {who} (lock file {self.lock}; "
                                       "remove it only if that run is certainly dead)")
        # Move the stale lock aside, then check that it is the one judged: if another run broke
        # it first and took a new lock, that lock is put back.
        aside = self.lock.with_name(f"{LOCK_FILE}.{new_id()}.stale")
        try:
            os.rename(self.lock, aside)
        except FileNotFoundError:
            return
        moved = self._read(aside) or {}
        if holder and moved.get("token") != holder.get("token"):
            try:
                os.link(aside, self.lock)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        print(f"jumps: note: --out: broke the stale lock of {who} ({reason})", file=sys.stderr)

    def _stale_reason(self, holder: dict | None, age: float) -> str | None:
        """Why the lock's holder is dead, or None if it may be alive."""
        if not holder:  # empty or unreadable: only its age tells
            return f"unreadable, untouched for {age:.0f} s" if age > STALE_SECONDS else None
        pid = holder.get("pid")
        local = (holder.get("host") == socket.gethostname()
                 and holder.get("identity") == _host_identity() and isinstance(pid, int))
        if local:
            if not _pid_alive(pid):
                return "the process is gone"
            start = holder.get("proc_start")
            if start is not None and _proc_start(pid) not in (None, start):
                return "its pid now belongs to another process"
            return None
        if age > STALE_SECONDS:
            return f"no heartbeat for {age:.0f} s > {STALE_SECONDS:.0f} s"
        return None

    def _server_now(self) -> float:
        """The current time on the clock that stamps the lock's mtime (the file server's, on a
        network filesystem): the mtime of a file created now; this host's clock if that fails."""
        probe = self.path / f".jumps-lock.{new_id()}.clock"
        try:
            probe.touch()
            return probe.stat().st_mtime
        except OSError:
            return time.time()
        finally:
            probe.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if self._holder_token() != self.token:
                    self.lost = True
                    return
                os.utime(self.lock)
            except OSError:
                continue
