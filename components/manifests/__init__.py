"""Pure manifest builders: spec in, Kubernetes objects (plain dicts) out.

No Pulumi and no I/O here except reading pinned upstream files through
`components.upstream`. Same input, same output, byte for byte.
"""
