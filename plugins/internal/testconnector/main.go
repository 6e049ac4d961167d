// Command testconnector is the connector the plugins tests start: an echo
// connector written as an external one would be (plugin.Serve with
// plugins.ServeConfig), which misbehaves as its flags say.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/tallyhq/tally/plugins"
)

func main() {
	crashAfter := flag.Int("crash-after", 0, "exit in the middle of the call after this many calls (0: never)")
	hangOn := flag.String("hang-on", "", "never return from this operation: describe, exchange, register or usage")
	garbage := flag.Bool("garbage", false, "write a line to stdout before the handshake")
	version := flag.Int("protocol-version", plugins.ProtocolVersion, "protocol version to serve")
	cookie := flag.String("cookie", plugins.MagicCookieValue, "magic cookie value to expect")
	pidfile := flag.String("pidfile", "", "write the process ID to this file at start")
	flag.Parse()

	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *garbage {
		fmt.Println("hello, this is not a handshake")
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	impl := &echo{crashAfter: int64(*crashAfter), hangOn: *hangOn}
	cfg := plugins.ServeConfig(impl, logger)
	cfg.MagicCookieValue = *cookie
	if *version != plugins.ProtocolVersion {
		cfg.ProtocolVersion = uint(*version)
		cfg.VersionedPlugins = map[int]plugin.PluginSet{*version: cfg.VersionedPlugins[plugins.ProtocolVersion]}
	}
	logger.Info("testconnector serving", "pid", os.Getpid())
	plugin.Serve(cfg)
}

// echo answers every request with "echo:" and the request. A few requests
// make it answer with an error instead.
type echo struct {
	calls      atomic.Int64
	crashAfter int64
	hangOn     string
}

func (e *echo) enter(op string) {
	if n := e.calls.Add(1); e.crashAfter > 0 && n > e.crashAfter {
		os.Exit(3)
	}
	if op == e.hangOn {
		select {}
	}
}

func (e *echo) Describe(context.Context) (plugins.Description, error) {
	e.enter("describe")
	return plugins.Description{Name: "test", Version: "1.0", Online: true, Offline: true}, nil
}

func (e *echo) Exchange(_ context.Context, request []byte) ([]byte, error) {
	e.enter("exchange")
	switch string(request) {
	case "unreachable":
		return nil, fmt.Errorf("dial back office: %w", plugins.ErrUnreachable)
	case "not-yet":
		return nil, fmt.Errorf("request 7: %w", plugins.ErrNoResponseYet)
	case "big":
		return make([]byte, plugins.MaxPayload+1), nil
	case "print":
		fmt.Println("a line on stdout")
	}
	return append([]byte("echo:"), request...), nil
}

func (e *echo) RegisterLicensingID(_ context.Context, certDER []byte) error {
	e.enter("register")
	return nil
}

func (e *echo) ReportUsage(_ context.Context, report []byte) error {
	e.enter("usage")
	if string(report) == "refuse" {
		return fmt.Errorf("usage report: %w", plugins.ErrRejected)
	}
	return nil
}
