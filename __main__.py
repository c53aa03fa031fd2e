"""The Pulumi program: load the stack config, compose the components. Nothing else."""

from pathlib import Path

import pulumi

from components.errors import ConfigError
from components.specs.loader import pulumi_engine_config, pulumi_engine_secret_keys, spec_from_config, with_layers
from components.stack import deploy
from components.upstream import UpstreamLoader

try:
    source = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    spec = spec_from_config(
        with_layers(pulumi_engine_config(), source).config, source=source, secret_keys=pulumi_engine_secret_keys(),
        project=Path.cwd(),  # the engine runs the program in the project folder, as the provider resolves paths
    )
    deploy(spec, UpstreamLoader())
except ConfigError as error:
    # One readable message for bad config, no Python traceback.
    raise pulumi.RunError(str(error)) from None
