package device_test

import (
	"testing"

	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
)

// BenchmarkWebSocketCheckouts runs 1,000 devices over real TLS on loopback,
// each looping checkout of count 1 then return, against the in-memory
// store. One op is one checkout (with its return). The clients share the
// machine with the server and skip signature checks, which a real device
// does on its own CPU. It reports checkouts/s and the latency of each
// request at the device. "batched" signs a Merkle root per batch;
// "per-response" signs every payload on its own.
func BenchmarkWebSocketCheckouts(b *testing.B) {
	for _, mode := range []struct {
		name  string
		batch int
	}{{"batched", 0}, {"per-response", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			benchCheckouts(b, 1000, device.Config{MaxSignBatch: mode.batch, MaxRate: -1})
		})
	}
}

func benchCheckouts(b *testing.B, devices int, cfg device.Config) {
	srv := devicetest.NewServer(b, cfg)
	devicetest.BenchCheckouts(b, srv.URL, srv.TLS, devices, "big", "1.0")
	sigs, payloads := metric(b, srv, "tally_device_signatures_total"), metric(b, srv, "tally_device_signed_payloads_total")
	if sigs > 0 {
		b.ReportMetric(float64(payloads)/float64(sigs), "payloads/signature")
	}
}
