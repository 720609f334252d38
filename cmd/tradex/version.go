package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/tradex-mesh/tradex/embedded"
)

// printVersion prints the module version, the VCS revision when the binary
// was built with it, and the versions that matter to operators.
func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "tradex %s\ngo %s %s/%s\nnats-server %s (embedded)\n",
		moduleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, embedded.ServerVersion())
	return err
}

// moduleVersion is the module version of the binary ("(devel)" from a
// work tree), with the VCS revision when it was built from one.
func moduleVersion() string {
	version, revision := "(devel)", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if revision != "" {
		version += " (" + revision + ")"
	}
	return version
}
