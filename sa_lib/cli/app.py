"""`sa-app [--host 127.0.0.1] [--port 7860]`: serve the web app (sa_lib.app.web) until Ctrl-C.

Needs the optional `app` extra (gradio): `pip install -e '.[app]'`, which `make setup` installs.
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import sys
from pathlib import Path

from ..app.web import DEFAULT_HOST, DEFAULT_PORT, AppService, build_app, is_loopback, launch, offline_environment
from ..core.errors import UsageError
from .command import CommandParser, fail, one_line, run_command, summary

PROG = "sa-app"


class AppUnavailable(RuntimeError):
    """The app cannot start here: gradio is missing, or the address cannot be served (exit 1)."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__),
                                epilog="example: sa-app --photos ~/Pictures   then open http://127.0.0.1:7860")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--photos", type=Path,
                   help="folder of photos the suggestion tab starts with; when given, only folders inside it can "
                        "be ranked (needed to rank any when --host is not a loopback address)")
    return p


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start(args: argparse.Namespace) -> tuple[AppService, object]:
    """Check the command line and the machine, then build the service and the page (nothing served yet)."""
    if ":" in args.host:  # Gradio builds http://HOST:PORT without brackets, which httpx rejects for IPv6
        raise UsageError(f"--host {args.host}: IPv6 addresses are not supported by the app; use 127.0.0.1 (this "
                         "machine) or 0.0.0.0 (the network)")
    if importlib.util.find_spec("gradio") is None:
        raise AppUnavailable("gradio is not installed: install the app extra (pip install -e '.[app]', or make setup)")
    if args.photos is not None and not args.photos.is_dir():
        raise UsageError(f"--photos {args.photos}: not a folder")
    if not _port_free(args.host, args.port):
        raise AppUnavailable(f"cannot serve on {args.host}:{args.port}: the port is taken or the address is not "
                             f"this machine's (try --port)")
    offline_environment()
    service = AppService(args.device, photos_root=args.photos, allow_any_folder=is_loopback(args.host))
    return service, build_app(service, photos=args.photos)


def main(argv: list[str] | None = None) -> None:
    """One line on stderr per problem: exit 2 for usage errors, 1 when the app cannot start."""
    args = parser().parse_args(argv)
    service, demo = run_command(PROG, lambda: start(args), failures=(AppUnavailable,))
    print(f"{PROG}: serving on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        launch(demo, args.host, args.port, service, block=True, quiet=True)
    except KeyboardInterrupt:
        pass
    except OSError as err:
        fail(PROG, f"cannot serve on {args.host}:{args.port}: {one_line(err)}")


if __name__ == "__main__":
    main()
