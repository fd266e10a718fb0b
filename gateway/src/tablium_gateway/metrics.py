"""Kong's prometheus plugin metrics (the subset the dev gateway produces), in a registry
of the gateway's own so that several gateways can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kong_http_requests",
            "HTTP status codes per service/route in Kong",
            ("service", "route", "code", "source"),
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "kong_request_latency_ms",
            "Total latency incurred during requests for each service/route in Kong",
            ("service", "route"),
            buckets=_LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "kong_upstream_latency_ms",
            "Latency added by upstream response for each service/route in Kong",
            ("service", "route"),
            buckets=_LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
