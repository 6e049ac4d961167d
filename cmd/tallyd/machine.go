package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/hw"
)

// What the Properties view says of the machine and the binary
// (transport.Config.HostIDs and Build).

// machineHostIDs returns a func that reads the hostids of the machine
// (package hw, in its order of preference) each time it is called, so that
// a network card added since the start shows; a read takes milliseconds
// and happens only when an administrator opens the view. A machine whose
// hostids cannot be read shows none, and says why in the log once.
func machineHostIDs(log *slog.Logger) func() []hostid.HostID {
	var warn sync.Once
	return func() []hostid.HostID {
		m, err := hw.Detect(hw.Config{})
		if err != nil {
			warn.Do(func() { log.Warn("the hostids of this machine cannot be read", "err", err) })
		}
		return m.HostIDs
	}
}

// buildDescription says what was built beyond buildVersion: the VCS
// revision Go stamped into the binary (with "+dirty" for uncommitted
// changes) when there is one, the Go release and the platform.
func buildDescription() string {
	parts := []string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		var revision, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if revision != "" {
			revision = revision[:min(len(revision), 12)]
			if modified == "true" {
				revision += "+dirty"
			}
			parts = append(parts, revision)
		}
	}
	return strings.Join(append(parts, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH), " ")
}
