package device_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/deviceproto"
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
	ctx := context.Background()
	clients := make([]*deviceproto.Client, devices)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{
				TLS: srv.TLS, Hello: hello(fmt.Sprintf("bench-%d", i)), SkipSignatureCheck: true, HandshakeTimeout: time.Minute})
			if err != nil {
				b.Error(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	var next atomic.Int64
	lat := make([][]time.Duration, devices)
	b.ResetTimer()
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := deviceproto.FeatureRequest{Name: "big", Version: "1.0", Count: 1}
			ref := deviceproto.FeatureRef{Name: "big", Version: "1.0"}
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				res, err := c.Checkout(ctx, want)
				if err != nil || len(res.Denials) > 0 {
					b.Errorf("checkout: %v %+v", err, res)
					return
				}
				t1 := time.Now()
				if _, err := c.Return(ctx, ref); err != nil {
					b.Errorf("return: %v", err)
					return
				}
				lat[i] = append(lat[i], t1.Sub(t0), time.Since(t1))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(f float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(f*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checkouts/s")
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	sigs, payloads := metric(b, srv, "tally_device_signatures_total"), metric(b, srv, "tally_device_signed_payloads_total")
	if sigs > 0 {
		b.ReportMetric(float64(payloads)/float64(sigs), "payloads/signature")
	}
	b.ReportMetric(0, "ns/op")
}
