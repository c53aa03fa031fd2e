"""The CrossGuard policy pack: the rules of sandbox_policy/ (beside this file), judged under
the pack's policy config.

`pulumi preview --policy-pack policies --policy-pack-config <config.json>`; the config for a
stack of this project comes from `sandbox-infra policy-config -s STACK`. Without config every
policy judges by the strict settings (environment prod) at its own enforcement level.
"""

from pulumi_policy import PolicyPack
from sandbox_policy.crossguard import policy_pack_args

PolicyPack(**policy_pack_args())
