package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var unlimited = Limits{RatePerSource: 1e9, Burst: 1e9, RateTotal: 1e9}

// BenchmarkDiscoverOffer is the device's view: one Discover call, from a
// padded DISCOVER to a verified OFFER, against a responder on loopback. It
// reports the median and 99th percentile round trip.
func BenchmarkDiscoverOffer(b *testing.B) {
	id := newIdentity(b)
	r := startResponder(b, id, Config{Now: time.Now, Limits: unlimited})
	client := listen(b, "127.0.0.1:0")
	cfg := ClientConfig{Conn: client, Targets: []netip.AddrPort{addrOf(r.cfg.Conn)}, PinnedFingerprint: id.fp.String(),
		Timeout: time.Minute, Attempts: 1, StopAfter: 1}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		offers, err := Discover(context.Background(), cfg)
		if err != nil || len(offers) != 1 {
			b.Fatalf("discover: %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkResponderRate floods one responder with DISCOVERs from 64
// source addresses and reports the OFFERs per second it sends. With no
// limits it measures what a node can sign and send; with the default
// limits it shows the node staying within them under the same flood.
func BenchmarkResponderRate(b *testing.B) {
	for _, c := range []struct {
		name   string
		limits Limits
	}{{"unlimited", unlimited}, {"default-limits", Limits{}}} {
		b.Run(c.name, func(b *testing.B) {
			id := newIdentity(b)
			r := startResponder(b, id, Config{Now: time.Now, Limits: c.limits})
			server := addrOf(r.cfg.Conn)
			sources := make([]*net.UDPConn, 64)
			for i := range sources {
				sources[i] = listen(b, fmt.Sprintf("127.0.1.%d:0", i+1))
			}
			request := mustRequest(b, Packet{Type: TypeDiscover, Nonce: Nonce{1}})
			dst := net.UDPAddrFromAddrPort(server)
			processed := func() uint64 {
				n := r.counters.received[TypeDiscover].Load()
				return n
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				_, _ = sources[i%len(sources)].WriteTo(request, dst)
			}
			// Wait for the responder to finish what the kernel queued.
			for last := ^uint64(0); ; {
				time.Sleep(20 * time.Millisecond)
				n := processed()
				if n == last {
					break
				}
				last = n
			}
			elapsed := time.Since(start) - 20*time.Millisecond
			b.StopTimer()
			offers := r.counters.sent[TypeOffer].Load()
			b.ReportMetric(float64(offers)/elapsed.Seconds(), "offers/s")
			b.ReportMetric(float64(processed())/elapsed.Seconds(), "requests/s")
			b.ReportMetric(float64(r.counters.dropped[dropRateLimited].Load())/elapsed.Seconds(), "limited/s")
			l := c.limits.withDefaults()
			if bound := l.RateTotal*elapsed.Seconds() + l.RateTotal; float64(offers) > bound {
				b.Errorf("%d offers in %s, more than the limit allows (%.0f)", offers, elapsed, bound)
			}
			if perSource := float64(len(sources)) * (l.RatePerSource*elapsed.Seconds() + float64(l.Burst)); float64(offers) > perSource {
				b.Errorf("%d offers in %s from %d sources, more than the per-source limit allows (%.0f)", offers, elapsed, len(sources), perSource)
			}
		})
	}
}
