"""The warm start: a resident judgekit process that has loaded what the commands need and forks one child per
command, so that ``judgekit`` costs a small Python start rather than ~0.3 s of imports (issue 17); the design of
Rails' Spring preloader and Gradle's daemon. ``judgekit`` is the console script :func:`main`.

Conventions:
- **When.** Linux only (``fork``, file descriptors passed over a Unix socket, the peer's credentials); anywhere
  else, with ``JUDGEKIT_SERVER=0`` (or ``off``, ``false``, ``no``), or when anything about the server is not as
  expected, the command runs in its own process exactly as before. ``judgekit server`` itself always does.
- **Which server.** One per *state*: the interpreter and its version, ``sys.path``, Python's flags and warning
  options, the environment variables that act at start-up or import (``PYTHON*``, ``LANG``, ``LC_*``,
  ``PYDANTIC_DISABLE_PLUGINS``), the process's cgroup (a batch job's server is not used by another job), the
  name, size and modification time of every judgekit source file and the modification time of every
  ``sys.path`` folder (a ``pip install`` changes its folder). Its socket is ``<dir>/<hash of the state>.sock``,
  where ``<dir>`` is ``JUDGEKIT_SERVER_DIR``, else ``$XDG_RUNTIME_DIR/judgekit``, else ``/tmp/judgekit-<uid>``:
  a folder of this user's, mode 0700, not a symbolic link (else no server is used). A server refuses a
  connection from another user (``SO_PEERCRED``) and a client whose state differs from its own (it then exits:
  its code is stale).
- **Starting.** A command that found no server runs in its own process and, once its work is done and its output
  written, starts one in the background (its own session, no terminal, standard streams to /dev/null, an
  environment of only the variables that act at start-up or say where things are: never an API key). Several
  starting at once: one takes the lock ``<socket>.lock``, the others exit.
- **The child** of a command gets the command's standard input, output and error (the file descriptors
  themselves: a terminal stays a terminal), its arguments, its whole environment (API keys travel over the
  socket, never through a file; the server forgets them when it has forked), working folder, umask and CPU
  affinity (its resource limits and nice value are the server's, chosen by the state); a child that cannot take
  one of these (a working folder gone, CPUs outside the server's) tells the command, which then runs in its own
  process. Signals INT, TERM, HUP and QUIT sent to the command
  are sent on to the child, but for those the command ignores (``nohup``'s HUP, a background job's INT), which
  the child ignores too; Ctrl-Z stops both and ``fg`` resumes both; a command killed without a chance to
  pass the signal on (``kill -9``) has its child killed the same way, so a resumed run finds what a ``kill -9``
  of a plain command would have left.
- **Exit.** The command exits with the child's exit code; a child killed by a signal the command passed on makes
  the command die of that signal.
- **Ending.** A server exits after ``JUDGEKIT_SERVER_IDLE`` seconds without a command (default 600), when asked
  (``judgekit server stop``), or when a client's state differs from its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
from typing import Any

ENV_SWITCH = "JUDGEKIT_SERVER"
ENV_DIR = "JUDGEKIT_SERVER_DIR"
ENV_IDLE = "JUDGEKIT_SERVER_IDLE"
DEFAULT_IDLE_S = 600.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_HEADER = struct.Struct("!cI")  # a message's kind (R run, ? status, Q quit) and the length of its marshal body
_REPLY = struct.Struct("!ci")  # P <child pid>, X <exit code>, F (run it yourself)
_MAX_BODY = 1 << 24

#: What a server's own environment keeps of the command's that started it: what acts at start-up and import, and
#: where things are; never an API key (a command's whole environment reaches only its own child).
_SERVER_ENV = frozenset({"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "LANG", "VIRTUAL_ENV", "XDG_RUNTIME_DIR",
                         "XDG_CACHE_HOME", "LITELLM_LOCAL_MODEL_COST_MAP"})
_SERVER_ENV_PREFIXES = ("PYTHON", "LC_", "PYDANTIC_", "JUDGEKIT_")

_spawn: tuple[str, str] | None = None  # (socket, state hash) for a server to start after a run done here


# ---- the command (client) side ---------------------------------------------------------------------------------
def main() -> int:
    """Entry point of the ``judgekit`` console script: the command through the warm server when one answers
    (see the module docstring), else in this process (:func:`judgekit.cli.main`)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # as judgekit.cli.main does: the same state
    args = sys.argv[1:]
    if _enabled() and not (args and args[0] == "server"):
        code = _through_server(args)
        if code is not None:  # the child wrote and closed everything: this process has nothing to tear down
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    from judgekit.cli import main as run_here

    return run_here()


def _enabled() -> bool:
    if os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return False
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds") and hasattr(socket, "SO_PEERCRED")


def server_dir(create: bool = False) -> str | None:
    """The folder of this user's server sockets (see the module docstring), made (mode 0700) when ``create``;
    None when it is missing or not safe: another owner, group or world access, a symbolic link."""
    given = os.environ.get(ENV_DIR)
    if given:
        path = given
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = os.path.join(os.environ["XDG_RUNTIME_DIR"], "judgekit")
    else:
        path = os.path.join("/tmp", f"judgekit-{os.getuid()}")
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def state_text() -> str:
    """Everything that makes a server right for this process (see the module docstring), as text."""
    import judgekit

    parts = [sys.executable, sys.version, repr(sys.flags), repr(sys.warnoptions), repr(getattr(sys, "_xoptions", {})),
             repr(sys.path)]
    parts += [f"{k}={v}" for k, v in sorted(os.environ.items())
              if k.startswith(("PYTHON", "LC_")) or k in ("LANG", "PYDANTIC_DISABLE_PLUGINS")]
    # a child cannot undo a limit or a nice value its server was started with: a server per limits and nice value
    parts += [f"nice {os.getpriority(os.PRIO_PROCESS, 0)}", repr(sorted(_limits().items()))]
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            parts.append(fh.read())
    except OSError:
        parts.append("no cgroup")
    for folder in sys.path:
        try:
            parts.append(f"{folder}:{os.stat(folder or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{folder}:-")
    root = os.path.dirname(judgekit.__file__)
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(here, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                parts.append(f"{path[len(root):]}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def state_hash(text: str) -> str:
    """64 bits of ``text`` for the socket's name (a collision is harmless: the server compares the whole text)."""
    import zlib

    data = text.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _recv_exact(conn: socket.socket, n: int, first: bytes = b"") -> bytes:
    buf = bytearray(first)
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _through_server(args: list[str]) -> int | None:
    """Run the command in a child of the warm server; its exit code, or None when it is to run here (no server,
    a stale one, a child that cannot take this process's folder or CPUs): a server is then started after the
    run."""
    global _spawn
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return None  # a closed standard stream cannot be passed on
    folder = server_dir(create=True)
    if folder is None:
        return None
    text = state_text()
    digest = state_hash(text)
    path = os.path.join(folder, f"{digest}.sock")
    if len(path.encode()) > 100:  # a Unix socket's path is at most 107 bytes
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        _spawn = (path, digest)
        return None
    import marshal

    try:
        message = _HEADER.pack(b"R", len(body := marshal.dumps(_request(args, text)))) + body
        sent = socket.send_fds(conn, [message], [0, 1, 2])
        conn.sendall(message[sent:])
        kind, pid = _REPLY.unpack(_recv_exact(conn, _REPLY.size))
    except (OSError, EOFError):
        conn.close()
        return None
    except KeyboardInterrupt:  # before the child said who it is: closing the connection ends it (as kill -9)
        conn.close()
        print("judgekit: interrupted", file=sys.stderr)
        return 130
    if kind != b"P":
        conn.close()
        _spawn = (path, digest) if kind == b"S" else None  # S: the server was stale and is gone
        return None
    return _wait(conn, pid)


def _limits() -> dict[int, tuple[int, int]]:
    """This process's resource limits (soft, hard) by resource."""
    import resource

    limits = {}
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            res = getattr(resource, name)
            try:
                limits[res] = resource.getrlimit(res)
            except (ValueError, OSError):
                continue
    return limits


def _request(args: list[str], text: str) -> dict[str, Any]:
    umask = os.umask(0)
    os.umask(umask)
    return {"argv0": sys.argv[0], "argv": args, "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask,
            "cpus": sorted(os.sched_getaffinity(0)), "state": text,
            "ignored": [int(n) for n in FORWARDED if signal.getsignal(n) == signal.SIG_IGN],
            "streams": [(s.encoding, s.errors) if s is not None else ("utf-8", "strict")
                        for s in (sys.stdin, sys.stdout, sys.stderr)]}


def _wait(conn: socket.socket, pid: int) -> int:
    """Pass signals on to the child ``pid`` until its exit code arrives."""
    sent: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        sent.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def stop(_signum: int, _frame: Any) -> None:  # Ctrl-Z: stop the child, then this process; fg resumes both
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, stop)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    for signum in FORWARDED:
        if signal.getsignal(signum) != signal.SIG_IGN:  # one this process ignores (a background job's INT) stays so
            signal.signal(signum, forward)
    signal.signal(signal.SIGTSTP, stop)
    try:
        kind, code = _REPLY.unpack(_recv_exact(conn, _REPLY.size))
    except (OSError, EOFError):
        kind, code = b"", 1
    finally:
        conn.close()
    if kind == b"X":
        return code
    if sent:  # the child died of the signal passed on: so does this process
        signal.signal(sent[-1], signal.SIG_DFL)
        os.kill(os.getpid(), sent[-1])
    print("judgekit: error: the command's process ended without an exit status (killed?)", file=sys.stderr)
    return 1


def after_direct_run() -> None:
    """After a command run in its own process: start a server when none answered (see the module docstring).
    Called by :func:`judgekit.cli.main` once the command's output is written; never raises."""
    global _spawn
    if _spawn is None:
        return
    path, digest = _spawn
    _spawn = None
    try:
        import marshal
        import subprocess

        env = {k: v for k, v in os.environ.items() if k in _SERVER_ENV or k.startswith(_SERVER_ENV_PREFIXES)}
        code = ("import sys, marshal; sys.path[:] = marshal.loads(bytes.fromhex(sys.argv[1])); "
                "from judgekit.cli.warm import child, serve; forked = serve(sys.argv[2], sys.argv[3]); "
                "forked and child(*forked)")
        subprocess.Popen([sys.executable, "-c", code, marshal.dumps(sys.path).hex(), path, digest],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True, cwd=os.path.dirname(path), env=env)
    except Exception:  # a server is a speed-up: failing to start one never fails the command
        return


# ---- the server side ------------------------------------------------------------------------------------------
def serve(path: str, digest: str) -> tuple[socket.socket, list[int], dict[str, Any]] | None:
    """The server's life (see the module docstring): take the lock, load, listen, fork a child per command.
    Returns None in the server when it ends; in a child, returns its connection, file descriptors and request,
    for :func:`child` (called by the start-up code at the top of the stack, so that a child that ends with the
    interpreter's normal shutdown has none of the server's frames under it)."""
    import contextlib
    import fcntl
    import time

    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return None  # another server for this state is running or starting
    text = state_text()
    if state_hash(text) != digest:
        return None  # the files changed since the command looked
    preload()
    if state_text() != text:
        return None  # they changed while loading
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a dead server's (only the holder of the lock binds this path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(64)
    idle = _idle_s()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    me, started, last, served = os.getpid(), time.time(), time.time(), 0
    try:
        while True:
            left = idle - (time.time() - last)  # idle since the last command (a status request is none)
            if left <= 0:
                break
            srv.settimeout(left)
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                break
            conn.settimeout(10)
            kind, req, fds = _receive(conn)
            stale = kind == b"R" and req is not None and req.get("state") != text
            if kind == b"R" and req is not None and not stale:
                last, served = time.time(), served + 1
                if os.fork() == 0:
                    srv.close()
                    os.close(lock)
                    return conn, fds, req  # the child (the finally below does nothing in it)
            req = None  # the command's environment (its API keys) is the child's alone
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                if kind == b"?":
                    import marshal

                    info = marshal.dumps({"pid": me, "started": started, "last": last, "idle_s": idle,
                                          "served": served, "state": text})
                    conn.sendall(_HEADER.pack(b"?", len(info)) + info)
                elif kind == b"Q":
                    conn.sendall(_REPLY.pack(b"Q", 0))
                elif stale:
                    conn.sendall(_REPLY.pack(b"S", 0))  # the command runs itself and starts a new server
            conn.close()
            if kind == b"Q" or stale:
                break
    finally:
        if os.getpid() == me:
            with contextlib.suppress(OSError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.unlink(path + ".lock")  # still held: a server starting now makes a new one
            srv.close()
            os.close(lock)
    return None


def _idle_s() -> float:
    try:
        value = float(os.environ.get(ENV_IDLE, DEFAULT_IDLE_S))
    except ValueError:
        return DEFAULT_IDLE_S
    return value if value > 0 else DEFAULT_IDLE_S


def _receive(conn: socket.socket) -> tuple[bytes, dict[str, Any] | None, list[int]]:
    """One request: its kind, its body (run requests) and the file descriptors that came with it. A peer of
    another user, or a malformed request, gives kind ``b""``."""
    import marshal

    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", creds)[1] != os.getuid():
            return b"", None, []
        data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    except OSError:
        return b"", None, []
    try:
        head = _recv_exact(conn, _HEADER.size, data)[:_HEADER.size] if len(data) < _HEADER.size else data
        kind, n = _HEADER.unpack(head[:_HEADER.size])
        if kind != b"R":
            return kind, None, fds
        if n > _MAX_BODY or len(fds) != 3:
            return b"", None, fds
        req = marshal.loads(_recv_exact(conn, n, data[_HEADER.size:]))
    except (OSError, EOFError, ValueError, TypeError, struct.error):
        return b"", None, fds
    return (kind, req, fds) if isinstance(req, dict) else (b"", None, fds)


def preload() -> None:
    """Load what commands need before their first call: the CLI and its commands' parsers, the judging path
    (records, rubric and checks, the runner, the store, the HTTP client), the summary (rich, the tables), and
    the records' validators. numpy, scipy, pandas, litellm and torch are left to the commands that use them."""
    import importlib

    from judgekit import cli

    cli._skip_pydantic_plugin_loader()
    cli._build_parser([])
    for name in ("asyncio", "sqlite3", "yaml", "judgekit.cli.judge", "judgekit.api.judging", "judgekit.api.reports",
                 "judgekit.judging.runner", "judgekit.judging.backends.openai_compat", "judgekit.judging.rubric",
                 "judgekit.judging.checks", "judgekit.io.dataio", "judgekit.reporting.tables",
                 "judgekit.stats.aggregate", "rich.console", "rich.table"):
        importlib.import_module(name)
    from judgekit.io.records import Item, Judgment, Response

    for model in (Item, Response, Judgment):
        model.model_rebuild()
    from judgekit.cli._common import warm_rich

    warm_rich()


def child(conn: socket.socket, fds: list[int], req: dict[str, Any]) -> None:
    """The forked child: become the command (see the module docstring), run it, send its exit code. Ends the
    process: ``os._exit`` when nothing is left to finish (as :func:`judgekit.cli.main` does), else the
    interpreter's normal shutdown, whose last act sends the exit code."""
    import contextlib
    import io
    import threading

    code = 70
    done = threading.Event()  # set once the exit code is on its way: the command's end is then no kill
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        for signum in req.get("ignored", ()):  # what the command ignores (nohup's HUP, a background job's INT)
            signal.signal(signum, signal.SIG_IGN)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        if not _become(req):
            conn.sendall(_REPLY.pack(b"F", 0))
            os._exit(0)
        sys.stdin, sys.stdout, sys.stderr = (  # type: ignore[assignment]
            io.TextIOWrapper(io.FileIO(fd, "rb" if fd == 0 else "wb", closefd=False), encoding=enc, errors=err,
                             line_buffering=fd == 2 or os.isatty(fd), write_through=fd == 2)
            for fd, (enc, err) in enumerate(req["streams"]))
        sys.argv = [req["argv0"], *req["argv"]]

        def watch() -> None:  # the command went away without passing a signal on: end as a kill -9 would
            try:
                data = conn.recv(1)
            except OSError:
                data = b""
            if not data and not done.is_set():
                os.kill(os.getpid(), signal.SIGKILL)

        conn.settimeout(None)
        conn.sendall(_REPLY.pack(b"P", os.getpid()))
        threading.Thread(target=watch, name=WATCH_THREAD, daemon=True).start()
        from judgekit import cli

        try:
            code = cli._main(None)
        except SystemExit as stop:  # argparse (--help, --version, a usage error) or a command's own exit
            code = _exit_status(stop.code)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if code != cli.EXIT_INTERRUPTED and not cli._nothing_left_to_finish():
            import atexit

            def report() -> None:
                done.set()
                with contextlib.suppress(OSError):
                    conn.sendall(_REPLY.pack(b"X", code))

            atexit.register(report)
            sys.exit(code)
    except SystemExit:
        raise
    except KeyboardInterrupt:  # outside the command's own handling (it prints and returns 130 itself)
        code = 130
    except BaseException:  # a child never goes on past its command: as the interpreter would, a traceback, 1
        import traceback

        with contextlib.suppress(Exception):
            traceback.print_exc()
        code = 1
    done.set()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        conn.sendall(_REPLY.pack(b"X", code))
    os._exit(code)


def _exit_status(value: object) -> int:
    """The exit status ``sys.exit(value)`` gives, printing ``value`` to stderr when it is not a number, as the
    interpreter does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


WATCH_THREAD = "judgekit-warm-client"  # (judgekit.cli._nothing_left_to_finish knows it: not work to finish)


def _become(req: dict[str, Any]) -> bool:
    """Take the command's working folder, umask, environment and CPU affinity; False when one cannot be taken
    (the command then runs itself). Its limits and nice value need nothing: they are part of the state, so the
    server's, which the child has, are the same."""
    try:
        os.chdir(req["cwd"])
        os.umask(req["umask"])
        if sorted(os.sched_getaffinity(0)) != req["cpus"]:
            os.sched_setaffinity(0, req["cpus"])
    except (OSError, ValueError):
        return False
    os.environ.clear()
    os.environ.update(req["env"])
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # what importing judgekit sets
    import time

    time.tzset()  # the command's TZ, for local times
    return True


# ---- judgekit server status / stop ---------------------------------------------------------------------------
def servers(folder: str | None = None) -> list[dict[str, Any]]:
    """Every live server in ``folder`` (default: this user's, :func:`server_dir`): ``pid``, ``started``, ``last`` (a
    command's start, epoch seconds), ``idle_s``, ``served``, ``socket`` and ``current`` (whether its state is this
    process's)."""
    import marshal

    folder = folder or server_dir()
    if folder is None:
        return []
    here = state_text()
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".sock"):
            continue
        path = os.path.join(folder, name)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(5)
        try:
            conn.connect(path)
            conn.sendall(_HEADER.pack(b"?", 0))
            _kind, n = _HEADER.unpack(_recv_exact(conn, _HEADER.size))
            info = marshal.loads(_recv_exact(conn, n))
        except (OSError, EOFError, ValueError, struct.error):
            continue
        finally:
            conn.close()
        info["socket"] = path
        info["current"] = info.pop("state", None) == here
        out.append(info)
    return out


def stop_servers(folder: str | None = None) -> int:
    """Ask every live server in ``folder`` (default: this user's) to exit; how many were asked."""
    n = 0
    for info in servers(folder):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(5)
        try:
            conn.connect(info["socket"])
            conn.sendall(_HEADER.pack(b"Q", 0))
            _recv_exact(conn, _REPLY.size)
            n += 1
        except (OSError, EOFError):
            continue
        finally:
            conn.close()
    return n
