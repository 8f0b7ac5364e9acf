"""``judgekit server status`` and ``judgekit server stop``: the warm servers of this user (:mod:`judgekit.cli.warm`).

A server starts by itself after a command that found none, and ends by itself after ``JUDGEKIT_SERVER_IDLE``
seconds without a command; ``JUDGEKIT_SERVER=0`` runs every command in its own process. This command itself
always runs in its own process.
"""

from __future__ import annotations

import argparse
import time


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    s = sub.add_parser("server", help="the warm servers that make commands start fast (status, stop)",
                       description="A judgekit command asks a warm server of this user to run it in a forked child "
                                   "that has everything loaded; the first command starts one. 'status' lists them, "
                                   "'stop' ends them. JUDGEKIT_SERVER=0 turns them off.")
    ops = s.add_subparsers(dest="server_command", required=True, metavar="ACTION")
    ops.add_parser("status", help="list this user's warm servers", description="List this user's warm servers.")
    ops.add_parser("stop", help="stop this user's warm servers", description="Stop this user's warm servers.")


def run(args: argparse.Namespace) -> int:
    from judgekit.cli import warm

    if args.server_command == "stop":
        n = warm.stop_servers()
        print(f"{n} server{'s' if n != 1 else ''} stopped")
        return 0
    found = warm.servers()
    folder = warm.server_dir()
    if not found:
        print(f"no warm server{' in ' + folder if folder else ''}"
              f"{' (JUDGEKIT_SERVER=0: commands run in their own process)' if not warm._enabled() else ''}")
        return 0
    now = time.time()
    for info in found:
        state = "current" if info["current"] else "other (another interpreter, environment or judgekit's code)"
        print(f"pid {info['pid']}: up {now - info['started']:.0f} s, {info['served']} commands, last "
              f"{now - info['last']:.0f} s ago, ends after {info['idle_s']:.0f} s idle; {state}; {info['socket']}")
    return 0
