package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/device/devicetest"
)

// BenchmarkNodeWebSocketCheckouts measures checkouts over the device
// WebSocket against a whole node: TLS, the device protocol, signed
// responses, group commit into the durable raft log (fsync on), and the
// engine. 1,000 devices each check out a count of the demo "reader" and
// return it, over and over; a checkout is counted once its response
// arrives. The clients run in the same process and share the cores.
func BenchmarkNodeWebSocketCheckouts(b *testing.B) {
	const devices = 1000
	dir := b.TempDir()
	cfg, err := loadConfig([]string{"--dev", "--data-dir", dir, "--https-port", "0", "--discovery-port", "0", "--node-id", "bench"})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := start(context.Background(), cfg, log, newLogSwitch(io.Discard, "text"), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	go d.http.Serve(d.listener)
	defer d.shutdown(10 * time.Second)
	url := strings.Replace(d.url, "https://", "wss://", 1) + "ws/device"

	devicetest.BenchCheckouts(b, url, &tls.Config{InsecureSkipVerify: true}, devices, "reader", "2022.01")
}
