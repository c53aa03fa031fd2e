"""The sandbox-infra component package's plugin: Pulumi runs this (PulumiPlugin.yaml)."""

from sandbox_infra.package import serve

if __name__ == "__main__":
    serve()
