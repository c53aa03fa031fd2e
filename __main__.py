"""The Pulumi program: load the stack config, compose the components. Nothing else."""

import pulumi

from components.errors import ConfigError
from components.specs.loader import pulumi_engine_config, spec_from_config
from components.stack import deploy
from components.upstream import UpstreamLoader

try:
    spec = spec_from_config(pulumi_engine_config(), source=f"stack {pulumi.get_stack()}")
    deploy(spec, UpstreamLoader())
except ConfigError as error:
    # One readable message for bad config, no Python traceback.
    raise pulumi.RunError(str(error)) from None
