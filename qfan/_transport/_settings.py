"""Where and as whom to connect: endpoint, region and credential resolution, following AWS conventions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal

from .._exceptions import ConfigError
from ._redact import REDACTED, register_secret

Service = Literal["sqs", "sns", "s3", "dynamodb"]

_TRUE = {"1", "true", "yes", "on"}
_SECRET_FIELDS = frozenset({"secret_access_key", "session_token"})


def resolve_endpoint(
    service: Service, explicit: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The endpoint URL for a service, or ``None`` for the AWS default.

    Order: explicit argument > ``AWS_ENDPOINT_URL_<SERVICE>`` > ``AWS_ENDPOINT_URL`` > AWS default.
    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` disables the environment variables, as in the AWS SDKs.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() in _TRUE:
        return None
    return env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True, slots=True, repr=False)
class ConnectionSettings:
    """Everything the transport needs to open its clients.

    Attributes left ``None`` fall through to the normal AWS chain (environment, shared config and
    credentials files, container and instance metadata). The repr masks the secret access key and the
    session token (``'***'`` when set), and both are registered with the log and error redaction.
    """

    region: str | None = None
    endpoint_urls: Mapping[Service, str | None] = field(default_factory=dict)
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    max_connections: int = 64
    connect_timeout: float = 5.0
    read_timeout: float = 40.0

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigError("give both access_key_id and secret_access_key, or neither")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.read_timeout <= 20:
            raise ConfigError(f"read_timeout must exceed the 20 s long poll, got {self.read_timeout}")
        # Explicit credentials are resolved right here: from now on logs and error texts hide them.
        register_secret(self.secret_access_key)
        register_secret(self.session_token)

    def __repr__(self) -> str:
        # Settings end up in logs, tracebacks and debugger views; whether a secret is set is worth seeing.
        shown = (
            f"{f.name}={REDACTED!r}"
            if f.name in _SECRET_FIELDS and getattr(self, f.name) is not None
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"{type(self).__name__}({', '.join(shown)})"

    def resolve_region(self, from_profile: str | None) -> str:
        """Explicit region > ``AWS_REGION`` > the profile chain (``AWS_DEFAULT_REGION``, config file)."""
        region = self.region or os.environ.get("AWS_REGION") or from_profile
        if not region:
            raise ConfigError(
                "no AWS region configured: pass App(region=...) or set AWS_REGION / AWS_DEFAULT_REGION"
            )
        return region

    def endpoint(self, service: Service) -> str | None:
        """The resolved endpoint for ``service`` (``None`` means AWS's own)."""
        return resolve_endpoint(service, self.endpoint_urls.get(service))
