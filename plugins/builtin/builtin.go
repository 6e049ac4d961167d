// Package builtin serves Tally's built-in connectors from the tallyd
// binary itself: tallyd re-executes its own binary as
//
//	<binary> connector dir --dir DIR
//	<binary> connector http --url URL [--ca FILE | --pin SHA256] [--try-timeout D] [--attempts N]
//
// and the binary's main hands what follows "connector" to Main, which
// serves the chosen connector over go-plugin. So one binary on flash holds
// the daemon and its built-in connectors. (Main lives apart from package
// plugins because the connectors it serves depend on that package.)
package builtin

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/tallyhq/tally/plugins"
	"github.com/tallyhq/tally/plugins/dir"
	"github.com/tallyhq/tally/plugins/httpconn"
)

// Main runs the built-in connector that args name (the arguments after
// "connector") and returns the process's exit code. Run by hand, without
// the handshake tallyd gives it, it says so and returns 1.
func Main(args []string) int {
	if !plugins.UnderHost() {
		fmt.Fprintln(os.Stderr, plugins.ErrNotUnderHost)
		return 1
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	impl, err := New(args)
	if err != nil {
		logger.Error("built-in connector", "error", err)
		return 2
	}
	if err := plugins.Serve(impl, logger); err != nil {
		logger.Error("built-in connector", "error", err)
		return 1
	}
	return 0
}

// ErrUnknown is returned for a connector name that is not built in.
var ErrUnknown = errors.New("no such built-in connector (want dir or http)")

// New makes the built-in connector that args name, without serving it.
func New(args []string) (plugins.Connector, error) {
	if len(args) == 0 {
		return nil, ErrUnknown
	}
	fs := flag.NewFlagSet("connector "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch args[0] {
	case "dir":
		var cfg dir.Config
		fs.StringVar(&cfg.Dir, "dir", "", "exchange directory")
		if err := parse(fs, args[1:]); err != nil {
			return nil, err
		}
		return dir.New(cfg)
	case "http":
		var cfg httpconn.Config
		fs.StringVar(&cfg.URL, "url", "", "back office base URL (https)")
		fs.StringVar(&cfg.CAFile, "ca", "", "PEM file of the CAs of the back office")
		fs.StringVar(&cfg.PinSHA256, "pin", "", "SHA-256 of the back office certificate")
		fs.DurationVar(&cfg.TryTimeout, "try-timeout", 0, "timeout of each try")
		fs.IntVar(&cfg.Attempts, "attempts", 0, "tries per operation")
		if err := parse(fs, args[1:]); err != nil {
			return nil, err
		}
		return httpconn.New(cfg)
	}
	return nil, fmt.Errorf("%q: %w", args[0], ErrUnknown)
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
