package raft

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
)

// BenchmarkApplyDurable measures checkouts and returns through a node that
// fsyncs every log write, with many concurrent callers so that group
// commit fills entries. Each operation is one Apply.
func BenchmarkApplyDurable(b *testing.B) {
	n := open(b, b.TempDir(), nil)
	apply(b, n, rights(core.MaxCount))
	var next atomic.Int64
	b.SetParallelism(64)
	requests := metric(b, n, "tally_raft_requests_applied_total")
	batches := metric(b, n, "tally_raft_batches_applied_total")
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dev := device(b, devName(int(next.Add(1))))
		if _, err := n.Apply(context.Background(), hello(dev)); err != nil {
			b.Error(err)
			return
		}
		co, ret := checkout(dev, "cad", 1), checkout(dev, "cad", 0)
		for i := 0; pb.Next(); i++ {
			c := co
			if i%2 == 1 {
				c = ret
			}
			if _, err := n.Apply(context.Background(), c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	elapsed := time.Since(start)
	requests = metric(b, n, "tally_raft_requests_applied_total") - requests
	batches = metric(b, n, "tally_raft_batches_applied_total") - batches
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	if batches > 0 {
		b.ReportMetric(requests/batches, "requests/entry")
	}
}
