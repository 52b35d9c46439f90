"""The ``herald`` command: ``herald db upgrade``, ``herald config sample``, ``herald policy sample``, ...

Subcommands are rows of :data:`COMMANDS`; a name with a space (``"db upgrade"``) is a nested subcommand.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oslo_config import cfg

from herald.api.auth import ConfigurationError
from herald.config import Settings, load_settings, new_conf

CONFIG_NAMESPACES = ("herald", "keystonemiddleware.auth_token", "oslo.policy")
POLICY_NAMESPACES = ("herald",)

Runner = Callable[[argparse.Namespace], int]
ArgumentAdder = Callable[[argparse.ArgumentParser], None]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its help line, how it reads its arguments, and what it runs (returns the exit code)."""

    help: str
    run: Runner
    add_arguments: ArgumentAdder = _no_arguments


def add_config_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="oslo.config INI file (herald.conf); repeat to layer files, later ones win.",
    )


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL", help="SQLAlchemy URL; overrides [database] connection.")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the long-running commands (``serve`` and friends); see :func:`settings_from_args`."""
    add_config_file_argument(parser)
    parser.add_argument("--bind", metavar="ADDRESS", help="Listen address; overrides osapi_compute_listen.")
    parser.add_argument("--port", type=int, help="Listen port; overrides osapi_compute_listen_port.")
    parser.add_argument("--hosts", metavar="H1,H2", help="Comma-separated compute hosts; overrides [herald] hosts.")
    add_database_argument(parser)


def settings_from_args(args: argparse.Namespace, conf: cfg.ConfigOpts | None = None) -> Settings:
    """Settings from ``--config-file`` files, then the command-line overrides that were given.

    Reads ``config_file``, ``bind``, ``port``, ``hosts`` and ``database`` from ``args``; any of them
    may be missing (a command without that flag) or None (flag not given).
    """
    conf = conf if conf is not None else new_conf()
    settings = load_settings(conf, config_files=getattr(args, "config_file", None) or ())
    bind: str | None = getattr(args, "bind", None)
    port: int | None = getattr(args, "port", None)
    hosts: str | None = getattr(args, "hosts", None)
    database: str | None = getattr(args, "database", None)
    return dataclasses.replace(
        settings,
        listen=settings.listen if bind is None else bind,
        port=settings.port if port is None else port,
        hosts=settings.hosts if hosts is None else tuple(h.strip() for h in hosts.split(",") if h.strip()),
        database_url=settings.database_url if database is None else database,
    )


def _db_upgrade_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_file_argument(parser)
    add_database_argument(parser)


def db_upgrade(args: argparse.Namespace) -> int:
    """Create the database schema or bring it up to date."""
    # NOTE: imported here (like the generators below) so that `herald --help` stays quick.
    from herald.adapters.sql import migrate

    migrate.upgrade(settings_from_args(args).database_url)
    return 0


def _output_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-file", metavar="PATH", help="Write here instead of standard output.")


def config_sample(args: argparse.Namespace) -> int:
    """Print the sample herald.conf (oslo-config-generator)."""
    from oslo_config import cfg, generator

    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    argv = [arg for namespace in CONFIG_NAMESPACES for arg in ("--namespace", namespace)]
    conf(argv)
    if args.output_file is None:
        generator.generate(conf, output_file=sys.stdout)
    else:
        with open(args.output_file, "w", encoding="utf-8") as out:
            generator.generate(conf, output_file=out)
    return 0


def policy_sample(args: argparse.Namespace) -> int:
    """Print the sample policy.yaml (oslopolicy-sample-generator)."""
    from oslo_config import cfg
    from oslo_policy import generator

    argv = [arg for namespace in POLICY_NAMESPACES for arg in ("--namespace", namespace)]
    if args.output_file:
        argv += ["--output-file", args.output_file]
    generator.generate_sample(args=argv, conf=cfg.ConfigOpts())
    return 0


def serve(args: argparse.Namespace) -> int:
    from herald.serve import serve_embedded

    conf = new_conf()
    # NOTE: the embedded shape is a laptop tool: loopback and noauth2 unless herald.conf says otherwise.
    conf.set_default("osapi_compute_listen", "127.0.0.1")
    conf.set_default("auth_strategy", "noauth2", group="api")
    serve_embedded(settings_from_args(args, conf), conf)
    return 0


def _api_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_file_argument(parser)
    parser.add_argument("--bind", metavar="ADDRESS", help="Listen address; overrides osapi_compute_listen.")
    parser.add_argument("--port", type=int, help="Listen port; overrides osapi_compute_listen_port.")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="API worker processes; overrides osapi_compute_workers."
    )


def api(args: argparse.Namespace) -> int:
    from herald.distributed import serve_api

    conf = new_conf()
    settings = settings_from_args(args, conf)
    if args.workers is not None:
        if args.workers < 1:
            raise SystemExit("herald api: --workers must be at least 1")
        settings = dataclasses.replace(settings, workers=args.workers)
    serve_api(settings, conf)
    return 0


def _agent_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_file_argument(parser)
    parser.add_argument("--host", metavar="NAME", help="This compute host's name; overrides [DEFAULT] host.")


def agent(args: argparse.Namespace) -> int:
    from herald.distributed import run_agent

    settings = settings_from_args(args)
    return run_agent(settings, args.host or settings.host)


def _power_watch_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_file_argument(parser)
    parser.add_argument(
        "--interval", type=float, metavar="SECONDS", help="Seconds between two polls; overrides [power_watch] interval."
    )


def power_watch(args: argparse.Namespace) -> int:
    from herald.power_watch import run

    conf = new_conf()
    return run(settings_from_args(args, conf), conf, interval=args.interval)


COMMANDS: dict[str, Command] = {
    "db upgrade": Command("Create or upgrade the database schema.", db_upgrade, _db_upgrade_arguments),
    "config sample": Command("Print a sample herald.conf.", config_sample, _output_file_argument),
    "policy sample": Command(
        "Print a sample policy.yaml with the default rules.", policy_sample, _output_file_argument
    ),
    "serve": Command(
        "Run embedded Herald: the API and an agent per compute host in one process (SQLite, in-process bus).",
        lambda args: serve(args),
        add_server_arguments,
    ),
    "api": Command(
        "Run the compute API alone (distributed shape): N worker processes; agents run as herald agent.",
        api,
        _api_arguments,
    ),
    "agent": Command(
        "Run the compute agent of one host (distributed shape): its queue, server operations, power sync.",
        agent,
        _agent_arguments,
    ),
    "power-watch": Command(
        "Post power-update events for servers whose Redfish node changed power (Ironic's role).",
        power_watch,
        _power_watch_arguments,
    ),
}


def build_parser(commands: dict[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description="OpenStack Compute server external events.")
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {
        (): parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    }
    for name, command in commands.items():
        *path, leaf = name.split()
        for depth in range(len(path)):
            prefix = tuple(path[: depth + 1])
            if prefix not in groups:
                group_parser = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = group_parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
        sub = groups[tuple(path)].add_parser(leaf, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``herald`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        return run(args)
    except ConfigurationError as exc:
        # NOTE: an operator's mistake, said in one line: a traceback would bury it.
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # NOTE: `herald config sample | head`: stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
