package devicetest

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// BenchCheckouts connects devices to the device WebSocket at url, then has
// them check out count 1 of feature and return it until b.N checkouts are
// done. It reports checkouts/s, the p50 and p99 latency of a request as
// the device sees it, and the CPU time of the process per checkout.
// Signatures are not checked: a real device does that on its own CPU.
func BenchCheckouts(b *testing.B, url string, tlsConfig *tls.Config, devices int, feature, version string) {
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
			c, err := deviceproto.Dial(ctx, url, deviceproto.ClientConfig{
				TLS:                tlsConfig,
				Hello:              deviceproto.Hello{HostIDs: []deviceproto.HostID{{Value: fmt.Sprintf("bench-%d", i), Type: "STRING"}}},
				SkipSignatureCheck: true,
				HandshakeTimeout:   time.Minute,
			})
			if err != nil {
				b.Error(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if b.Failed() {
		b.FailNow()
	}

	var next atomic.Int64
	lat := make([][]time.Duration, devices)
	b.ResetTimer()
	start := time.Now()
	cpu0, haveCPU := processCPU()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := deviceproto.FeatureRequest{Name: feature, Version: version, Count: 1}
			ref := deviceproto.FeatureRef{Name: feature, Version: version}
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
	cpu1, _ := processCPU()
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
	if haveCPU {
		// CPU of the whole process, devices included: unlike checkouts/s it
		// does not depend on what else the machine runs.
		b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/checkout")
	}
	b.ReportMetric(0, "ns/op")
}
