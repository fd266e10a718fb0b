"""One RabbitMQ user per service, allowed to publish only its own event types (defence in depth).

The consumer refuses an envelope whose ``source`` isn't its type's publisher; this makes the broker
refuse the publish itself: a service's user has topic permissions on the events exchange for the
routing keys ``<service>.*`` only, and may configure, write and read only its own queues
(``<service>.events…``), so a stolen wallet password can't state ``blockchain.deposit_confirmed``.

``python -m tablium_kit.messaging.brokerusers`` creates or updates the users with ``rabbitmqctl`` (on
the broker's host; ``scripts/ensure-infra.sh`` runs it for development, with development passwords).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable

import click

from tablium_kit.messaging.catalog import SERVICES


def dev_password(service: str) -> str:
    """Development only: production gives each service its own secret (``TABLIUM_<SVC>_AMQP_URL``)."""
    return f"dev-only-{service}-broker-password"


def permission_commands(
    service: str, user: str, *, vhost: str = "/", exchange: str = "tablium.events"
) -> list[list[str]]:
    """The ``rabbitmqctl`` arguments granting ``user`` what ``service`` needs, and no more."""
    own = rf"{re.escape(service)}\.events(\..+)?"
    x = re.escape(exchange)
    return [
        # configure: declare the exchange and its own queues; write: publish to the exchange, bind its own
        # queues, publish retries/dead letters through the default exchange; read: consume its own queues,
        # bind from the exchange.
        ["set_permissions", "-p", vhost, user, f"^({x}|{own})$", rf"^({x}|{own}|amq\.default)$", f"^({x}|{own})$"],
        # Publishing on the events exchange: its own routing keys only.
        ["set_topic_permissions", "-p", vhost, user, exchange, rf"^{re.escape(service)}\.[a-z0-9_]+$", "^.*$"],
    ]


def ensure_users(
    services: Iterable[str] = SERVICES,
    *,
    vhost: str = "/",
    exchange: str = "tablium.events",
    user_prefix: str = "tablium-",
    passwords: dict[str, str] | None = None,
) -> list[str]:
    """Create (or reset the password and permissions of) one user per service; returns their names."""
    users = []
    for service in services:
        user = f"{user_prefix}{service}"
        password = (passwords or {}).get(service) or dev_password(service)
        listed = _rabbitmqctl("list_users", "--no-table-headers")
        if user in {line.split("\t")[0] for line in listed.splitlines()}:
            _rabbitmqctl("change_password", user, password)
        else:
            _rabbitmqctl("add_user", user, password)
        for command in permission_commands(service, user, vhost=vhost, exchange=exchange):
            _rabbitmqctl(*command)
        users.append(user)
    return users


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


@click.command(name="tablium-broker-users")
@click.option("--vhost", default="/", show_default=True)
@click.option("--exchange", default="tablium.events", show_default=True)
@click.option("--user-prefix", default="tablium-", show_default=True)
@click.option("--service", "services", multiple=True, help="Only these services (default: all).")
def main(vhost: str, exchange: str, user_prefix: str, services: tuple[str, ...]) -> None:
    """Create each service's broker user with development passwords and its permissions."""
    users = ensure_users(services or SERVICES, vhost=vhost, exchange=exchange, user_prefix=user_prefix)
    click.echo(f"broker users: {', '.join(users)}")


if __name__ == "__main__":
    main()
