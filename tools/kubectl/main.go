// kubectl from k8s.io/kubectl, for `make bench-engine` (benchmarks/pulumi_engine.py): the
// same objects applied by kubectl beside `pulumi up`. No client auth plugins: the
// benchmark talks to a loopback control plane with a client certificate.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
