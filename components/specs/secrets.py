"""Config values that must be Pulumi secrets (cloud-init user data, SSH keys).

In a stack file such a value is written by `pulumi config set --secret --path ...`
as `{secure: <ciphertext>}`; offline (render, tests) nobody can decrypt it, so the
spec only records that a sealed secret is there. Under the Pulumi engine the
program receives the decrypted text; the spec holds it in a `SecretValue` whose
repr never shows it, and the components hand it to Pulumi only as
`pulumi.Output.secret`, so it is encrypted in state and masked in logs.

Plain text is refused either way: a secret written in clear into a stack file is
already leaked to every reader of the repository.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from ..errors import ConfigError

SECRET_REQUIRED = "secret_required"
REDACTED = "<secret>"
"""What every output (render, config explain, diff, messages) shows instead of a secret value."""

# Validation context key: set by the engine loader, whose config values arrive decrypted.
REVEALED_CONTEXT = "secrets_revealed"


class SecretValue:
    """A secret from stack config. `sealed`: only the ciphertext exists (offline). Given to a
    component (from Python or the component package) the "plaintext" may be the `pulumi.Output`
    that gives it (another resource's output, unknown at preview): `reveal()` hands it on, and
    the components pass either straight into `pulumi.Output.secret`."""

    __slots__ = ("_plaintext",)

    def __init__(self, plaintext: str | Any | None) -> None:
        self._plaintext = plaintext

    @property
    def sealed(self) -> bool:
        return self._plaintext is None

    def reveal(self) -> str | Any:
        """The decrypted text; callers pass it straight into `pulumi.Output.secret`."""
        if self._plaintext is None:
            raise ConfigError("a 'secure:' value was not decrypted: its value is only available under the Pulumi engine, "
                              "from the stack file (stacks/Pulumi.<stack>.yaml)")
        return self._plaintext

    def __repr__(self) -> str:
        return "SecretValue(sealed)" if self.sealed else "SecretValue(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._plaintext == self._plaintext

    def __hash__(self) -> int:
        return hash(self._plaintext)


def _is_output(value: Any) -> bool:
    """A `pulumi.Output` (another resource's output, `config.require_secret`), recognised without
    importing the SDK: the offline commands never load it, and no Output exists unless it is loaded."""
    pulumi = sys.modules.get("pulumi")
    return pulumi is not None and isinstance(value, pulumi.Output)


def _secret_value(value: Any, info: ValidationInfo) -> SecretValue:
    if isinstance(value, SecretValue):
        return value
    if _is_output(value):  # secret or not, known or not: the components store it only as a secret
        return SecretValue(value)
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return SecretValue(None)
    revealed = bool(info.context and info.context.get(REVEALED_CONTEXT))
    if revealed and isinstance(value, str) and value:
        return SecretValue(value)
    # The message never repeats the value: it may be the very secret that must not leak.
    raise PydanticCustomError(SECRET_REQUIRED, "must be a Pulumi secret (a 'secure:' value in the stack file), never plain text")


SecretText = Annotated[
    SecretValue,
    PlainValidator(_secret_value),
    PlainSerializer(lambda _value: REDACTED, return_type=str),
]


def _kubeconfig(value: Any, info: ValidationInfo) -> str | SecretValue:
    """A path to a kubeconfig file, or its contents as a Pulumi secret; never contents in clear."""
    if isinstance(value, SecretValue | dict):
        return _secret_value(value, info)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("kubeconfig_type", "must be the path to a kubeconfig file, or its contents as a "
                                                     "Pulumi secret (a 'secure:' value)")
    if looks_like_kubeconfig(value):
        if info.context and info.context.get(REVEALED_CONTEXT):
            return SecretValue(value)  # decrypted by the engine; spec_from_config checks it was a secret
        raise PydanticCustomError(SECRET_REQUIRED, "holds kubeconfig contents in plain text")
    return value


def looks_like_kubeconfig(value: str) -> bool:
    """Contents rather than a path. A path is one word (no spaces or line breaks); anything
    else, or YAML/JSON with a kubeconfig's keys, may hold credentials and is treated as such."""
    text = value.strip()
    return any(c.isspace() for c in text) or text.startswith(("{", "[")) or any(
        word in text for word in ("apiVersion", "clusters:", "users:", "client-key-data", "token:"))


def _shown_kubeconfig(value: str | SecretValue) -> str:
    return REDACTED if isinstance(value, SecretValue) else value


Kubeconfig = Annotated[
    str | SecretValue,
    PlainValidator(_kubeconfig),
    PlainSerializer(_shown_kubeconfig, return_type=str),
]
"""`cluster.provider.kubeconfig`: a file path (shown as is), or the contents as a Pulumi secret (shown as <secret>)."""
