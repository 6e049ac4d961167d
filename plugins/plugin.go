package plugins

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// The handshake. A process started without the cookie in its environment
// knows it was not started by tallyd; a connector built for another
// protocol version is refused by the host.
const (
	MagicCookieKey   = "TALLY_CONNECTOR_COOKIE"
	MagicCookieValue = "7f3c9a2e-tally-connector-contract"
	// ProtocolVersion is the version of the connector contract this
	// package speaks. A change that old connectors cannot follow adds a
	// version to the VersionedPlugins map.
	ProtocolVersion = 1
	// PluginName is the name the connector is dispensed under.
	PluginName = "connector"
)

// ErrNotUnderHost is returned by Serve in a process that tallyd did not
// start.
var ErrNotUnderHost = errors.New("this is a Tally connector; tallyd starts it")

// Handshake is the go-plugin handshake of the connector contract.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// ConnectorPlugin is the go-plugin GRPCPlugin of the connector contract.
// Impl is the connector a plugin process serves; the host leaves it nil.
type ConnectorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Connector
}

var _ plugin.GRPCPlugin = (*ConnectorPlugin)(nil)

// GRPCServer registers the connector service on the plugin's gRPC server.
func (p *ConnectorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("connector plugin has no implementation")
	}
	s.RegisterService(serviceDesc(), &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the host's Connector for the plugin process. go-plugin
// cancels ctx when the process exits.
func (p *ConnectorPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &grpcClient{conn: conn, done: ctx.Done()}, nil
}

// versionedPlugins is the plugin set for each protocol version spoken.
func versionedPlugins(impl Connector) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &ConnectorPlugin{Impl: impl}},
	}
}

// ServeConfig is the go-plugin configuration that serves impl as a
// connector. A connector written in Go outside this repository passes it
// to plugin.Serve; Serve does so for the built-in ones. A nil logger logs
// JSON to stderr, which the host folds into tallyd's log.
func ServeConfig(impl Connector, logger hclog.Logger) *plugin.ServeConfig {
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Info,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	}
	return &plugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: versionedPlugins(impl),
		GRPCServer:       newGRPCServer,
		Logger:           logger,
	}
}

// newGRPCServer is the plugin's gRPC server, with the message size limit.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(wireLimit), grpc.MaxSendMsgSize(wireLimit))
	return grpc.NewServer(opts...)
}

// UnderHost reports whether this process was started by a connector host.
func UnderHost() bool {
	return os.Getenv(MagicCookieKey) == MagicCookieValue
}

// Serve serves impl as a connector until the host stops the process. It
// returns ErrNotUnderHost at once when tallyd did not start this process.
// Besides the host's own safeguards, the process exits when its parent
// goes away.
func Serve(impl Connector, logger hclog.Logger) error {
	if !UnderHost() {
		return ErrNotUnderHost
	}
	cfg := ServeConfig(impl, logger)
	go exitWithParent(os.Getppid(), cfg.Logger)
	plugin.Serve(cfg)
	return nil
}

// exitWithParent ends the process once it has been handed to another
// parent: the host that started it is gone.
func exitWithParent(ppid int, logger hclog.Logger) {
	for range time.Tick(time.Second) {
		if os.Getppid() != ppid {
			logger.Error("tallyd is gone; connector exiting")
			os.Exit(1)
		}
	}
}
