"""Inspecting and replaying a service's dead letters, as functions and as the ``tablium-deadletters`` CLI.

Messages are read with ``basic.get`` without ack: whatever is not replayed goes back to the queue when
the channel closes, so listing never loses anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

import aio_pika
import click
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from tablium_kit.messaging.topology import ATTEMPTS_HEADER, ERROR_HEADER, REASON_HEADER, QueueNames
from tablium_kit.settings import ServiceSettings


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    type: str | None
    reason: str
    attempts: int
    error: str


async def list_dead_letters(amqp_url: str, queues: QueueNames) -> list[DeadLetter]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        return [_describe(message) for message in await _take_all(channel, queues)]


async def replay_dead_letters(amqp_url: str, queues: QueueNames, ids: Collection[str] | None = None) -> int:
    """Move dead letters (all, or those whose message id is in ``ids``) back to the main queue, tries reset."""
    connection = await aio_pika.connect(amqp_url)
    replayed = 0
    async with connection:
        # A copy the broker returns (no such queue) raises before its dead letter is acked.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for message in await _take_all(channel, queues):
            if ids is not None and message.message_id not in ids:
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    headers=headers,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.type,
                ),
                routing_key=queues.main,
            )
            # Acked only once the copy is confirmed: a crash in between duplicates, never loses.
            await message.ack()
            replayed += 1
    return replayed


async def _take_all(channel: AbstractChannel, queues: QueueNames) -> list[AbstractIncomingMessage]:
    queue = await channel.declare_queue(queues.dlq, passive=True)
    messages = []
    # Unacked messages are not handed out twice on one channel, so this ends.
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        messages.append(message)
    return messages


def _describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    reason = headers.get(REASON_HEADER) or headers.get("x-first-death-reason") or "unknown"
    attempts = headers.get(ATTEMPTS_HEADER)
    return DeadLetter(
        message_id=message.message_id,
        type=message.type,
        reason=str(reason),
        attempts=attempts if isinstance(attempts, int) else 0,
        error=str(headers.get(ERROR_HEADER, "")),
    )


@click.group(name="tablium-deadletters")
@click.option("--service", required=True, help="Service whose dead letters to handle, e.g. wallet.")
@click.option("--amqp-url", default=None, help="Broker URL (default: the service's settings).")
@click.option("--queue-prefix", default="", help="Prefix of the service's queue names (tests).")
@click.pass_context
def dead_letters_cli(ctx: click.Context, service: str, amqp_url: str | None, queue_prefix: str) -> None:
    """Inspect and replay the messages in <service>.events.dlq."""
    ctx.obj = (amqp_url or ServiceSettings.from_env(service).amqp_url, QueueNames.for_service(service, queue_prefix))


@dead_letters_cli.command("list")
@click.pass_obj
def list_command(obj: tuple[str, QueueNames]) -> None:
    """One line per dead letter: message id, type, attempts, reason, error."""
    for letter in asyncio.run(list_dead_letters(*obj)):
        click.echo(f"{letter.message_id}\t{letter.type}\t{letter.attempts}\t{letter.reason}\t{letter.error}")


@dead_letters_cli.command("replay")
@click.option("--id", "ids", multiple=True, help="Message id to replay (repeatable).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.pass_obj
def replay_command(obj: tuple[str, QueueNames], ids: tuple[str, ...], replay_all: bool) -> None:
    """Move dead letters back to the service's main queue."""
    if bool(ids) == replay_all:
        raise click.UsageError("give either --id (one or more) or --all")
    count = asyncio.run(replay_dead_letters(*obj, None if replay_all else set(ids)))
    click.echo(f"replayed {count}")


if __name__ == "__main__":
    dead_letters_cli()
