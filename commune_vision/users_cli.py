"""``commune-vision users``: console accounts from the command line, for the first
admin and for recovering a lost admin password (the API needs an admin to log in)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

users_app = typer.Typer(help="Console user accounts.", no_args_is_help=True)


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option("--username", "-u", help="the admin's login name")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="read the password from standard input (scripts, Docker)"
        ),
    ] = False,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="if the user exists: set this password, make them admin and reactivate them",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config; default: the embedded demo config"),
    ] = None,
) -> None:
    """Create an admin in the config's database (migrating it first). Prompts for the
    password unless --password-stdin."""
    from commune_vision.cli import demo_config_path
    from core.config import load_config
    from core.errors import ConfigError
    from core.passwords import WeakPasswordError, check_password_strength, hash_password
    from core.storage.db import make_engine
    from core.storage.migrate import upgrade
    from core.storage.users import (
        DuplicateUsernameError,
        UserRepository,
        check_username,
        normalize_username,
    )

    name = normalize_username(username)
    try:
        check_username(name)
    except ValueError as exc:
        typer.echo(f"--username: {exc}", err=True)
        raise typer.Exit(2) from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password_strength(password)
    except WeakPasswordError as exc:
        typer.echo(f"password: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        cfg = load_config(config or demo_config_path())
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    cfg.storage.data_dir.mkdir(parents=True, exist_ok=True)  # SQLite lives there
    engine = make_engine(cfg.storage.resolved_database_url)
    try:
        upgrade(engine)
        users = UserRepository(engine)
        password_hash = hash_password(password)
        try:
            users.create_user(name, password_hash, "admin", "Administrator")
        except DuplicateUsernameError as exc:
            if not reset:
                typer.echo(
                    f"--username: user {name!r} already exists; add --reset to set a new "
                    "password and make them an active admin",
                    err=True,
                )
                raise typer.Exit(1) from exc
            users.update_user(name, role="admin", active=True, password_hash=password_hash)
            typer.echo(f"admin {name!r} reset")
            return
        typer.echo(f"admin {name!r} created")
    finally:
        engine.dispose()
