"""The CrossGuard policy pack: the rules of components/policy/ under the stack's settings.

The engine runs this file from policies/, so the project root goes on sys.path to
import the shared rules. The stack's settings (environment, caps, allowlists and
`policy.enforcement`) come from the stack config the engine passes to the pack;
`--policy-pack-config policies/config/<stack>.json` can override enforcement levels.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi_policy import PolicyPack
from sandbox_policy.crossguard import engine_context, policy_pack_args

PolicyPack(**policy_pack_args(engine_context()))
