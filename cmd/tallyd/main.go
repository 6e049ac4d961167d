// Command tallyd is the Tally license server daemon.
//
// It keeps the licensing state in a replicated store (package raft), serves
// the REST API, the device WebSocket and /metrics on one HTTPS port
// (package transport), and signs what it tells devices with the node's
// identity key. With --dev it runs on loopback with data in ./data, trusts
// the demo producer key and installs the demo rights.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/tallyhq/tally/plugins/builtin"
)

// buildVersion is stamped at build time with -ldflags "-X main.buildVersion=…".
var buildVersion = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "connector" {
		// tallyd re-executed as one of its built-in back-office connectors
		// (plugins/builtin): one binary on flash holds them all.
		os.Exit(builtin.Main(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "tallyd:", err)
		os.Exit(1)
	}
}

// run starts the daemon and serves until ctx ends, then shuts down
// gracefully: it stops taking connections, lets requests in flight finish,
// closes device connections and closes the store.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "version" {
		_, err := fmt.Fprintf(stdout, "tallyd %s\n", buildVersion)
		return err
	}
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	logs := newLogSwitch(stderr, cfg.LogFormat)
	log := slog.New(logs)
	setMemoryLimit(log, getenv, "")

	d, err := start(ctx, cfg, log, logs, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Tally %s is running at %s\n", buildVersion, d.url)
	fmt.Fprintf(stdout, "Admin user: admin, password %s\n", d.passwordNote)
	fmt.Fprintf(stdout, "Licensing ID fingerprint: %s\n", d.id.Fingerprint())
	fmt.Fprintf(stdout, "Discovery on UDP %s\n", d.presence.conn.LocalAddr())
	if d.cluster != nil {
		fmt.Fprintf(stdout, "Cluster: node %s, raft on %s (%s)\n", d.nodeID, d.cluster.config.Advertise, d.cluster.how)
	}
	if cfg.Dev {
		// The hint names the password file only when the password is there.
		login := "--password-file " + filepath.Join(cfg.DataDir, initialPasswordFile)
		if _, err := os.Stat(filepath.Join(cfg.DataDir, initialPasswordFile)); err != nil {
			login = "--password-file FILE"
		}
		fmt.Fprintf(stdout, "Demo rights are installed. Try: tallyctl --server %s --insecure %s features\n", d.url, login)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- d.http.Serve(d.listener) }()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		d.close()
		return fmt.Errorf("serve: %w", err)
	}
	return d.shutdown(10 * time.Second)
}

// portOf returns the port a listener is bound to.
func portOf(l net.Listener) string {
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		return strconv.Itoa(a.Port)
	}
	return ""
}

// ensureDataDir creates the data directory, readable by tallyd alone.
func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	return nil
}

// httpServer returns the HTTPS server with timeouts that keep slow or idle
// clients from holding resources. WebSocket connections are hijacked and
// manage their own deadlines.
func httpServer(h http.Handler, cert tls.Certificate, tlsConfig func(tls.Certificate) *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
