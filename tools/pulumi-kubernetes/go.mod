// The Kubernetes resource provider plugin at the version of the pinned
// `pulumi-kubernetes` Python SDK (requirements.txt): the SDK asks the engine for
// exactly this plugin version.
//
// No go.sum is committed: the Go module proxy reachable here refuses every version of
// this module (403 "This module version is not available"), so `go mod tidy` cannot
// run. tools/build.sh tries anyway and records the refusal.
module sandbox-infra/tools/pulumi-kubernetes

go 1.26.0

tool github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes

require github.com/pulumi/pulumi-kubernetes/provider/v4 v4.34.2
