package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/strictjson"
)

// config is tallyd's configuration. One loader fills it: defaults, then the
// JSON file named by --config, then the flags given on the command line.
type config struct {
	DataDir         string `json:"dataDir"`
	Dev             bool   `json:"dev"`
	Bind            string `json:"bind"`
	HTTPSPort       int    `json:"httpsPort"`
	DiscoveryPort   int    `json:"discoveryPort"`
	RaftPort        int    `json:"raftPort"`
	NodeID          string `json:"nodeId"`
	Join            string `json:"join"`
	JoinToken       string `json:"joinToken"`
	BootstrapExpect int    `json:"bootstrapExpect"`
	// BootstrapSecretFile holds a secret every founding node of a cluster
	// formed with --bootstrap-expect shares (formauth.go).
	BootstrapSecretFile string `json:"bootstrapSecretFile"`
	// DeadServerTimeout is how long a cluster member may be silent before
	// the leader removes it (when that is safe); "0" never removes.
	DeadServerTimeout string   `json:"deadServerTimeout"`
	TLSCert           string   `json:"tlsCert"`
	TLSKey            string   `json:"tlsKey"`
	ProducerKeys      []string `json:"producerKeys"`
	LogFormat         string   `json:"logFormat"`

	// Connectors are the back-office connectors backoffice.connector may
	// name (config file only).
	Connectors map[string]connectorConfig `json:"connectors"`

	// raftPortGiven says --raft-port was given: a --dev node then runs as
	// a cluster member too.
	raftPortGiven bool
}

const usage = `usage: tallyd [--config FILE] [--data-dir DIR] [--dev] [--bind IP] [--https-port 8443]
              [--discovery-port 30005] [--raft-port 61616] [--node-id NAME]
              [--join HOST:8443 --join-token TOKEN] [--bootstrap-expect N [--bootstrap-secret-file FILE]]
              [--dead-server-timeout 24h]
              [--tls-cert FILE --tls-key FILE] [--producer-key FILE]... [--log-format text|json]
       tallyd version`

func defaultConfig() config {
	return config{HTTPSPort: 8443, DiscoveryPort: 30005, RaftPort: 61616, LogFormat: "text", DeadServerTimeout: "24h"}
}

// minDeadServerTimeout keeps a member from being removed for a restart.
const minDeadServerTimeout = time.Minute

// deadServerTimeout reads --dead-server-timeout: 0 (never), or at least
// minDeadServerTimeout.
func (c *config) deadServerTimeout() (time.Duration, error) {
	d, err := time.ParseDuration(c.DeadServerTimeout)
	if c.DeadServerTimeout == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 || (d > 0 && d < minDeadServerTimeout) {
		return 0, fmt.Errorf("--dead-server-timeout %q: want 0 (never) or a duration of at least %s", c.DeadServerTimeout, minDeadServerTimeout)
	}
	return d, nil
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// loadConfig reads the command line (and the file it names) into a config.
func loadConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("tallyd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var flags config
	var producerKeys stringList
	file := fs.String("config", "", "")
	fs.StringVar(&flags.DataDir, "data-dir", "", "")
	fs.BoolVar(&flags.Dev, "dev", false, "")
	fs.StringVar(&flags.Bind, "bind", "", "")
	fs.IntVar(&flags.HTTPSPort, "https-port", 0, "")
	fs.IntVar(&flags.DiscoveryPort, "discovery-port", 0, "")
	fs.IntVar(&flags.RaftPort, "raft-port", 0, "")
	fs.StringVar(&flags.NodeID, "node-id", "", "")
	fs.StringVar(&flags.Join, "join", "", "")
	fs.StringVar(&flags.JoinToken, "join-token", "", "")
	fs.IntVar(&flags.BootstrapExpect, "bootstrap-expect", 0, "")
	fs.StringVar(&flags.BootstrapSecretFile, "bootstrap-secret-file", "", "")
	fs.StringVar(&flags.DeadServerTimeout, "dead-server-timeout", "", "")
	fs.StringVar(&flags.TLSCert, "tls-cert", "", "")
	fs.StringVar(&flags.TLSKey, "tls-key", "", "")
	fs.Var(&producerKeys, "producer-key", "")
	fs.StringVar(&flags.LogFormat, "log-format", "", "")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("%w\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
	}

	cfg := defaultConfig()
	if *file != "" {
		if err := readConfigFile(*file, &cfg); err != nil {
			return config{}, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data-dir":
			cfg.DataDir = flags.DataDir
		case "dev":
			cfg.Dev = flags.Dev
		case "bind":
			cfg.Bind = flags.Bind
		case "https-port":
			cfg.HTTPSPort = flags.HTTPSPort
		case "discovery-port":
			cfg.DiscoveryPort = flags.DiscoveryPort
		case "raft-port":
			cfg.RaftPort, cfg.raftPortGiven = flags.RaftPort, true
		case "node-id":
			cfg.NodeID = flags.NodeID
		case "join":
			cfg.Join = flags.Join
		case "join-token":
			cfg.JoinToken = flags.JoinToken
		case "bootstrap-expect":
			cfg.BootstrapExpect = flags.BootstrapExpect
		case "bootstrap-secret-file":
			cfg.BootstrapSecretFile = flags.BootstrapSecretFile
		case "dead-server-timeout":
			cfg.DeadServerTimeout = flags.DeadServerTimeout
		case "tls-cert":
			cfg.TLSCert = flags.TLSCert
		case "tls-key":
			cfg.TLSKey = flags.TLSKey
		case "producer-key":
			cfg.ProducerKeys = producerKeys
		case "log-format":
			cfg.LogFormat = flags.LogFormat
		}
	})
	// The data directory and address default by mode: a --dev node keeps
	// its data beside it and listens on loopback only.
	if cfg.DataDir == "" {
		cfg.DataDir = map[bool]string{true: "./data", false: "/var/lib/tally"}[cfg.Dev]
	}
	if cfg.Bind == "" {
		cfg.Bind = map[bool]string{true: "127.0.0.1", false: "0.0.0.0"}[cfg.Dev]
	}
	return cfg, cfg.validate()
}

func readConfigFile(path string, cfg *config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := strictjson.Unmarshal(data, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func (c *config) validate() error {
	var errs []error
	if net.ParseIP(c.Bind) == nil {
		errs = append(errs, fmt.Errorf("--bind %q is not an IP address", c.Bind))
	}
	for name, port := range map[string]int{"--https-port": c.HTTPSPort, "--discovery-port": c.DiscoveryPort, "--raft-port": c.RaftPort} {
		if port < 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is not a port", name, port))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if (c.Join == "") != (c.JoinToken == "") {
		errs = append(errs, errors.New("--join and --join-token go together"))
	}
	for name, cc := range c.Connectors {
		if _, err := cc.spec(name); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := c.deadServerTimeout(); err != nil {
		errs = append(errs, err)
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("--bootstrap-expect %d: want the number of nodes to form the cluster with", c.BootstrapExpect))
	}
	if c.BootstrapSecretFile != "" && c.BootstrapExpect < 2 {
		errs = append(errs, errors.New("--bootstrap-secret-file goes with --bootstrap-expect N (N > 1): it proves the nodes forming a cluster to each other"))
	}
	if c.BootstrapExpect > 0 && c.Join != "" {
		errs = append(errs, errors.New("--bootstrap-expect and --join exclude each other: a node forms a new cluster or joins one"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if strings.ContainsAny(c.NodeID, " \t\n/") || len(c.NodeID) > 64 {
		errs = append(errs, fmt.Errorf("--node-id %q: at most 64 characters, no spaces or slashes", c.NodeID))
	}
	return errors.Join(errs...)
}
