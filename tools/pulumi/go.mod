// The Pulumi CLI and the Python language host at the version of the pinned `pulumi`
// Python SDK (requirements.txt). The language host runs Python policy packs too
// (the engine starts them through the language host's RunPlugin), so nothing else is
// needed for `pulumi preview --policy-pack policies`.
//
// No go.sum is committed: the Go module proxy reachable here refuses these module
// versions (403 "This module version is not available"), so `go mod tidy` cannot run.
// tools/build.sh tries anyway (it resolves go.sum on the fly) and records the refusal.
module sandbox-infra/tools/pulumi

go 1.26.0

tool (
	github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
)

require (
	github.com/pulumi/pulumi/pkg/v3 v3.272.0
	github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 v3.272.0
	github.com/pulumi/pulumi/sdk/v3 v3.272.0
)

// The replace line pkg/v3's own go.mod carries (a replace only acts in the main module).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
