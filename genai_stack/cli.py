"""``genai-stack``: run the stack's playbooks, show its state, serve the panel.

::

    genai-stack deploy -l gpu-host --check      # site.yml, changes nothing
    genai-stack validate -l gpu-host            # playbooks/validate.yml
    genai-stack rotate -l gpu-host --secret-var genai_secret   # prompts, never on argv
    genai-stack run gpu_plan                    # any playbook of the project
    genai-stack status [-l gpu-host]            # health, containers, GPU memory vs plan
    genai-stack usage [-l gpu-host] [--days 7]  # the OpenAI gateway's requests and tokens
    genai-stack panel --set-password            # then: genai-stack panel [--port 8765]

Each event prints one line; the exit code is the playbook's rc (75 when a host is busy with
another run, 2 on a usage error).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from genai_stack.driver import Driver, DriverError, RunRequest
from genai_stack.events import EventKind, RunEvent, RunResult, first_line
from genai_stack.locks import HostBusy
from genai_stack.project import ALIASES, Project, ProjectError

EXIT_BUSY = 75
EXIT_USAGE = 2

COLORS = {
    EventKind.OK: "32",
    EventKind.CHANGED: "33",
    EventKind.FAILED: "31;1",
    EventKind.UNREACHABLE: "31;1",
    EventKind.SKIPPED: "36",
    EventKind.ERROR: "31;1",
    EventKind.PLAY_START: "1",
    EventKind.PLAYBOOK_START: "1",
    EventKind.STATS: "1",
}


class Printer:
    """One line per event, with the time since the start; colors on a terminal."""

    def __init__(self, stream: TextIO, color: bool) -> None:
        self.stream = stream
        self.color = color
        self.started = time.monotonic()

    def paint(self, text: str, code: str | None) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color and code else text

    def event(self, event: RunEvent) -> None:
        code = COLORS.get(event.kind)
        if event.kind is EventKind.FAILED and event.ignored:
            code = "35"
        elapsed = time.monotonic() - self.started
        print(f"{elapsed:7.1f}s  {self.paint(event.line(), code)}", file=self.stream, flush=True)
        if event.detail:
            for line in event.detail.splitlines():
                print(f"{'':10}{line}", file=self.stream, flush=True)

    def result(self, result: RunResult) -> None:
        code = "32;1" if result.ok else "31;1"
        summary = f"{result.playbook}: {result.status} (rc={result.rc}) in {result.duration_s:.1f}s"
        print(self.paint(summary, code), file=self.stream)
        for task in result.failed_tasks:
            kind = "unreachable" if task.unreachable else "failed"
            print(
                f"  {kind}: [{task.host}] {task.task}: {first_line(task.message)}", file=self.stream
            )
        if result.error:
            print(f"  {result.error}", file=self.stream)
        if result.artifact_dir:
            print(f"  artifacts: {result.artifact_dir}", file=self.stream)


def _extra_vars(values: list[str]) -> dict[str, Any]:
    """``-e`` like ansible-playbook: key=value, a JSON/YAML mapping, or @file."""
    merged: dict[str, Any] = {}
    for value in values:
        if value.startswith("@"):
            data = yaml.safe_load(Path(value[1:]).read_text(encoding="utf-8")) or {}
        elif value.lstrip().startswith("{"):
            data = yaml.safe_load(value)
        else:
            data = {}
            for pair in value.split():
                key, sep, val = pair.partition("=")
                if not sep:
                    raise ValueError(f"extra var '{pair}' is not key=value")
                data[key] = val
        if not isinstance(data, dict):
            raise ValueError(f"extra vars '{value}' are not a mapping")
        merged.update(data)
    return merged


def _secret_vars(names: list[str]) -> dict[str, str]:
    """``NAME`` (prompted, not echoed) or ``NAME=env:VARIABLE`` (read from the environment)."""
    found: dict[str, str] = {}
    for spec in names:
        name, sep, source = spec.partition("=")
        if sep:
            if not source.startswith("env:"):
                raise ValueError(
                    f"--secret-var {name}: give NAME or NAME=env:VARIABLE, not a value"
                )
            env_name = source[4:]
            if env_name not in os.environ:
                raise ValueError(f"--secret-var {name}: ${env_name} is not set")
            found[name] = os.environ[env_name]
        else:
            found[name] = getpass.getpass(f"{name}: ")
    return found


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--limit", help="host pattern, as ansible-playbook --limit")
    parser.add_argument("-t", "--tags", action="append", default=[], help="only these tags")
    parser.add_argument("--skip-tags", action="append", default=[], help="skip these tags")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                        help="key=value, a JSON/YAML mapping or @file (not for secrets)")  # fmt: skip
    parser.add_argument(
        "--secret-var",
        action="append",
        default=[],
        metavar="NAME[=env:VAR]",
        help="a secret extra var, prompted or read from $VAR; passed through a 0600 file "
        "deleted after the run, masked in events and artifacts",
    )
    parser.add_argument("-C", "--check", action="store_true", help="check mode: change nothing")
    parser.add_argument("-D", "--diff", action="store_true", help="show diffs")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--vault-password-file", help="as ansible-playbook's")
    parser.add_argument(
        "--ask-vault-pass", action="store_true", help="prompt for the vault password"
    )
    parser.add_argument("--timeout", type=int, help="cancel the run after this many seconds")
    parser.add_argument("--forks", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-stack",
        description="Drive the myia.genai_stack playbooks through ansible-runner.",
    )
    parser.add_argument("--project", help="the project root (default: found from the cwd)")
    parser.add_argument("--state-dir", help="runs, locks, history (default: <project>/.cache/runs)")
    parser.add_argument("-i", "--inventory", help="inventory (default: ansible.cfg's)")
    parser.add_argument("--keep-artifacts", type=int, default=20, help="runs' artifacts kept")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for verb, playbook, text in (
        ("deploy", "site", "site.yml: deploy the stack (try --check --diff first)"),
        ("validate", "validate", "playbooks/validate.yml: prove every service answers"),
        ("rotate", "rotate_tokens", "playbooks/rotate_tokens.yml: rotate the shared secret"),
    ):
        cmd = sub.add_parser(verb, help=text, description=text)
        _add_run_options(cmd)
        cmd.set_defaults(playbook=playbook)
    run = sub.add_parser("run", help="run any playbook of the project by name or path")
    run.add_argument("playbook", help="name (see `genai-stack playbooks`) or path")
    _add_run_options(run)
    sub.add_parser("playbooks", help="list the project's playbooks")

    status = sub.add_parser(
        "status",
        help="what runs now on the hosts: health, containers, GPU memory against the plan "
        "(playbooks/status.yml, read-only)",
    )
    status.add_argument("-l", "--limit", help="host pattern, as ansible-playbook --limit")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--no-health", action="store_true",
                        help="the stack model only (hosts, services, GPU plan): run nothing")  # fmt: skip
    status.add_argument("--deadline", type=int, default=90, metavar="SECONDS",
                        help="the longest the status run may take (default 90)")  # fmt: skip
    status.add_argument("--vault-password-file", help="for inventories with vaulted variables")

    usage = sub.add_parser(
        "usage",
        help="the OpenAI gateway's usage per day, client and model: requests, tokens, errors "
        "(playbooks/usage.yml, read-only)",
    )
    usage.add_argument("-l", "--limit", help="host pattern, as ansible-playbook --limit")
    usage.add_argument("--days", type=int, default=7, metavar="N",
                       help="the last N days, UTC, today included (default 7)")  # fmt: skip
    usage.add_argument("--json", action="store_true", help="machine-readable output")
    usage.add_argument("--deadline", type=int, default=60, metavar="SECONDS",
                       help="the longest the usage run may take (default 60)")  # fmt: skip
    usage.add_argument("--vault-password-file", help="for inventories with vaulted variables")

    panel = sub.add_parser("panel", help="serve the web panel (127.0.0.1 by default)")
    panel.add_argument("--host", default="127.0.0.1")
    panel.add_argument("--port", type=int, default=8765)
    panel.add_argument(
        "--secrets-dir", help="admin.bcrypt and session.key (default .secrets/panel)"
    )
    panel.add_argument("--https-only", action="store_true", help="secure cookies (behind TLS)")
    panel.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                       help="a reverse proxy (address or network) whose X-Forwarded-For names "
                       "the client, for the login throttle (repeatable)")  # fmt: skip
    panel.add_argument("--vault-password-file", help="for inventories with vaulted variables")
    panel.add_argument(
        "--set-password", action="store_true", help="set the admin's password and exit"
    )
    panel.add_argument("--user", default="admin", help="with --set-password: the user name")
    panel.add_argument("--password-stdin", action="store_true",
                       help="with --set-password: read the password from stdin")  # fmt: skip
    return parser


def _use_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def _run(args: argparse.Namespace, driver: Driver) -> int:
    try:
        extra = _extra_vars(args.extra_vars)
        secrets = _secret_vars(args.secret_var)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    vault_password = getpass.getpass("Vault password: ") if args.ask_vault_pass else None
    request = RunRequest(
        playbook=args.playbook,
        inventory=args.inventory,
        limit=args.limit,
        tags=[t for value in args.tags for t in value.split(",") if t],
        skip_tags=[t for value in args.skip_tags for t in value.split(",") if t],
        extra_vars=extra,
        secret_vars=secrets,
        check=args.check,
        diff=args.diff,
        verbosity=args.verbose,
        forks=args.forks,
        timeout=args.timeout,
        vault_password_file=args.vault_password_file,
        vault_password=vault_password,
        user=os.environ.get("USER") or None,
    )
    printer = Printer(sys.stdout, _use_color(args.color, sys.stdout))
    try:
        result = driver.run(request, on_event=printer.event)
    except HostBusy as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except (ProjectError, DriverError) as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    printer.result(result)
    return result.rc if 0 <= result.rc <= 255 else 1


def _model(args: argparse.Namespace, driver: Driver) -> int:
    from genai_stack import stack

    try:
        hosts = stack.load(driver, args.inventory, args.vault_password_file)
    except DriverError as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"hosts": [h.to_dict() for h in hosts]}, indent=2))
        return 0
    for view in hosts:
        groups = ", ".join(view.groups) or "-"
        print(f"{view.name}  ({view.connection}; groups: {groups})")
        for problem in view.problems:
            print(f"  ! {problem}")
        for svc in view.services:
            gpus = ",".join(str(g) for g in svc.gpus) or "-"
            print(f"  {svc.name:<20} {svc.kind:<8} {svc.bind_address}:{svc.port:<6} gpus={gpus}")
        if view.plan_table:
            print("  GPU plan:")
            for line in view.plan_table.splitlines():
                print(f"    {line}")
    return 0


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} GiB"


def print_status(result: Any, stream: TextIO) -> None:
    """The status as the panel's Stack page shows it, one block per host."""
    for host in result.hosts:
        print(f"{host.name}: {host.state}" + (f" ({host.reason})" if host.reason else ""),
              file=stream)  # fmt: skip
        for note, text in (("credentials", host.credentials_error),
                           ("docker", host.docker_error)):  # fmt: skip
            if text:
                print(f"  ! {note}: {text}", file=stream)
        for svc in host.services:
            c = svc.container
            container = (f"{c.name} {c.status}" + (f"/{c.health}" if c.health else "")
                         + f" restarts={c.restarts} {c.image}") if c else "no container"  # fmt: skip
            state = svc.state.upper() if svc.state != "up" else "up"
            if svc.state == "up" and svc.latency_ms is not None:
                state += f" {len(svc.checks)} checks {svc.latency_ms:.0f} ms"
            reason = f" ({svc.reason})" if svc.reason and svc.state != "up" else ""
            print(f"  {svc.name:<20} {state}{reason}", file=stream)
            print(f"  {'':<20} {container}", file=stream)
        if host.gpus:
            print("  GPU  used / total          planned            per service (used / planned)",
                  file=stream)  # fmt: skip
            for g in host.gpus:
                used = (f"{_gib(g.memory_used_mib)} / {_gib(g.memory_total_mib)}"
                        if g.measured else "not measured")  # fmt: skip
                uses = ", ".join(
                    f"{u.service} {_gib(u.used_mib)} / "
                    + (_gib(u.planned_mib) if u.planned else "NOT PLANNED")
                    + (" OVER" if u.over else "")
                    for u in g.uses
                )
                if g.other_mib:
                    uses += f", other processes {_gib(g.other_mib)}"
                mark = "  OVER PLAN" if g.over else ""
                print(f"  {g.index:<4} {used:<22} {g.planned_share:.2f} {_gib(g.planned_mib):<12} "
                      f"{uses}{mark}", file=stream)  # fmt: skip
        if host.gpu_reason:
            print(f"  nvidia-smi: {host.gpu_reason}", file=stream)


def _status(args: argparse.Namespace, driver: Driver) -> int:
    if args.no_health:
        return _model(args, driver)
    from genai_stack import status

    try:
        result = status.collect(
            driver, args.inventory, args.limit, args.vault_password_file, args.deadline
        )
    except (ProjectError, DriverError) as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print_status(result, sys.stdout)
        print(f"read by status.yml in {result.duration_s:.1f}s (run {result.run_id})")
        if result.error:
            print(f"genai-stack: {result.error}", file=sys.stderr)
    healthy = not result.error and all(h.state == "ok" for h in result.hosts)
    return 0 if healthy else 1


def _usage(args: argparse.Namespace, driver: Driver) -> int:
    from genai_stack import usage

    if not 1 <= args.days <= usage.MAX_DAYS:
        print(f"genai-stack: --days must be 1 to {usage.MAX_DAYS}", file=sys.stderr)
        return EXIT_USAGE
    try:
        read = usage.collect(
            driver, args.inventory, args.limit, args.vault_password_file, args.deadline
        )
    except (ProjectError, DriverError) as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summary = usage.summarise(read, args.days)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        sys.stdout.write(usage.render_table(summary))
        print(f"read by usage.yml in {read.duration_s:.1f}s (run {read.run_id})")
        if read.error:
            print(f"genai-stack: {read.error}", file=sys.stderr)
    return 0 if not read.error and all(h.ok for h in read.hosts) else 1


def _panel(args: argparse.Namespace, project: Project) -> int:
    from genai_stack.panel import auth
    from genai_stack.panel.config import PanelConfig

    config = PanelConfig.create(
        project,
        args.state_dir,
        args.secrets_dir,
        inventory=args.inventory,
        host=args.host,
        port=args.port,
        https_only=args.https_only,
        keep_artifacts=max(args.keep_artifacts, 1),
        vault_password_file=args.vault_password_file,
        trusted_proxies=tuple(args.trusted_proxy),
    )
    try:
        _ = config.proxy_networks
    except ValueError as exc:
        print(f"genai-stack: --trusted-proxy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.set_password:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"New password for {args.user}: ")
            if getpass.getpass("Again: ") != password:
                print("genai-stack: the passwords differ", file=sys.stderr)
                return EXIT_USAGE
        try:
            auth.set_password(config.password_file, args.user, password)
        except ValueError as exc:
            print(f"genai-stack: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"password of {args.user} written to {config.password_file} (bcrypt, 0600)")
        return 0
    from genai_stack.panel.server import serve

    try:
        serve(config)
    except auth.AuthConfigError as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        project = Project.discover(args.project)
    except ProjectError as exc:
        print(f"genai-stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "panel":
        return _panel(args, project)
    driver = Driver(project, args.state_dir, keep_artifacts=args.keep_artifacts,
                    inventory=args.inventory)  # fmt: skip
    if args.command == "playbooks":
        reverse = {v: k for k, v in ALIASES.items()}
        for name, path in driver.playbooks().items():
            verb = f"  (genai-stack {reverse[name]})" if name in reverse else ""
            print(f"{name:<16} {path.relative_to(project.root)}{verb}")
        return 0
    if args.command == "status":
        return _status(args, driver)
    if args.command == "usage":
        return _usage(args, driver)
    return _run(args, driver)


if __name__ == "__main__":
    sys.exit(main())
