"""Signed events: the relay signs each message's body with its service's key; consumers verify it.

The envelope's ``source`` says who published an event, but anyone who can publish on the broker can write
any ``source`` (the development platform's services share ``guest``; a stolen password is enough in
production). So each message carries an Ed25519 signature of its exact body bytes made with the publishing
service's own key (the key of its service tokens, ``service_identity.py``), and the ``kid`` of that key.
A consumer accepts a message only when the trust store says the key belongs to the service that publishes
the event's type (catalog.publisher), and the signature over the body holds. A body can't be altered nor
an event's type be stated by another service; a genuine message published again (a replay) is one event
id, which the inbox takes once.

Retries, dead letters and their replay keep the headers (the signature's have no ``x-`` prefix, which
``redelivery.py`` and ``deadletters.py`` drop), so a message signed once stays verifiable wherever it goes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tablium_kit.errors import Unauthorized
from tablium_kit.messaging.batches import Delivery, Unchecked
from tablium_kit.messaging.catalog import publisher, source_of
from tablium_kit.messaging.envelope import CloudEvent
from tablium_kit.service_identity import (
    ServiceTrust,
    development_kid,
    development_service_key,
    load_service_key,
    service_key_id,
)
from tablium_kit.settings import ServiceSettings

SIGNATURE_HEADER = "tablium-signature"
SIGNER_HEADER = "tablium-signer"


class EventSigner:
    """Signs the bodies a service publishes (the relay holds one)."""

    def __init__(self, key: Ed25519PrivateKey, kid: str) -> None:
        self._key = key
        self.kid = kid

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> EventSigner:
        """The service's own key (``service_key``), or its development key when none is set (which a trust
        store with keys in it refuses, and production settings don't allow)."""
        if not settings.service_key:
            return cls.development(settings.service_name)
        key = load_service_key(settings.service_key)
        return cls(key, service_key_id(key.public_key()))

    @classmethod
    def development(cls, service_name: str) -> EventSigner:
        return cls(development_service_key(service_name), development_kid(service_name))

    def headers(self, body: bytes) -> dict[str, str]:
        """The headers that prove ``body`` comes from this service."""
        signature = base64.urlsafe_b64encode(self._key.sign(body)).decode()
        return {SIGNATURE_HEADER: signature, SIGNER_HEADER: self.kid}


class EventVerifier:
    """Checks that a message was signed by the service that publishes its event type (consumers hold one)."""

    def __init__(self, trust: ServiceTrust) -> None:
        self._trust = trust

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> EventVerifier:
        return cls(ServiceTrust.from_settings(settings))

    def problem(self, publisher: str, body: bytes, headers: Mapping[str, Any] | None) -> str | None:
        """Why ``body`` can't be trusted as published by ``publisher``; None when its signature holds."""
        headers = headers or {}
        signature, kid = headers.get(SIGNATURE_HEADER), headers.get(SIGNER_HEADER)
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", "replace")
        if isinstance(kid, bytes):
            kid = kid.decode("ascii", "replace")
        if not isinstance(signature, str) or not isinstance(kid, str):
            return "not signed"
        try:
            owner, key = self._trust.key_for(kid)
        except Unauthorized:
            return f"signed with an unknown key {kid[:60]!r}"
        if owner != publisher:
            return f"signed by {owner}, not by {publisher}"
        try:
            raw = base64.urlsafe_b64decode(signature.encode("ascii", "replace"))
            key.verify(raw, body)
        except (InvalidSignature, binascii.Error, ValueError):
            return "bad signature"
        return None

    def forgery(self, delivery: Delivery) -> str | None:
        """Why ``delivery`` (an envelope) can't be from its event type's publisher (None when it is): a
        ``source`` that is not the publisher's, or a body its publisher's key did not sign. Checked once per
        delivery (the batch path and the one-by-one path both ask)."""
        if not isinstance(delivery.forgery, Unchecked):
            return delivery.forgery
        event = delivery.event
        assert isinstance(event, CloudEvent)
        if event.source != source_of(event.type):
            found: str | None = f"source {event.source!r} is not {source_of(event.type)!r}"
        else:
            found = self.problem(publisher(event.type), *delivery.signed())
        delivery.forgery = found
        return found
