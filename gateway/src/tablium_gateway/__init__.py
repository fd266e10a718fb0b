"""Tablium's edge gateway: kong.yml, and a development gateway that serves it where Kong can't run."""

from tablium_gateway.app import Gateway
from tablium_gateway.config import ConfigError, GatewayConfig, load_config

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "load_config"]
