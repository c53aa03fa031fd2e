"""Infrastructure for AI-agent sandboxes on Kubernetes, as a Pulumi program.

Data flows one way: config (`specs/`) -> manifests (`manifests/`, pure functions)
-> Pulumi components (the modules in this package). The policies read manifests.
"""
