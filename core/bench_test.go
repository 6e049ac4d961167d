package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// benchWorld loads 1,000 features, 10,000 devices and a model whose pools
// draw on them, with a lease held by every tenth device.
func benchWorld(b *testing.B) (*State, []hostid.HostID, []string) {
	h := newHarness(b)
	h.unchecked = true // verify is O(state) per command; far too slow for 10,000 hellos
	var lines []FeatureLine
	var names []string
	for i := range 1000 {
		name := fmt.Sprintf("feature%04d", i)
		names = append(names, name)
		lines = append(lines, fline(fmt.Sprintf("l%04d", i), name, "1.0", 100_000))
	}
	h.rights("bench", 1, lines...)
	model := `model "bench" {
  partitions {
    partition "east" { "feature0000" 1.0 20% "feature0001" 1.0 20% }
    partition "west" { "feature0000" 1.0 30% "feature0001" 1.0 30% }
  }
  on hostname("east-*") { use "east" }
  on hostname("west-*") { use "west" }
  on any() { accept }
}`
	h.apply(&SetModel{Text: model})
	devs := make([]hostid.HostID, 10_000)
	for i := range devs {
		site := []string{"east", "west", "other"}[i%3]
		devs[i] = h.hello(i, func(d *DeviceInfo) { d.Hostname = fmt.Sprintf("%s-%d", site, i) })
		if i%10 == 0 {
			h.granted(devs[i], names[(i*7)%len(names)], "1.0", 1)
		}
	}
	return h.s, devs, names
}

// BenchmarkCheckoutReturn measures one checkout and one return of a counted
// feature through Apply, in a state of 10,000 devices and 1,000 features with
// pools active. Target: 1,000,000 pairs a second on one core.
func BenchmarkCheckoutReturn(b *testing.B) {
	s, devs, names := benchWorld(b)
	v := version.MustParse("1.0")
	out := &Checkout{Version: v, Count: 1}
	back := &Checkout{Version: v, Count: 0}
	reqOut := Request{ID: RequestID{Session: 7}, Command: out}
	reqBack := Request{ID: RequestID{Session: 7}, Command: back}
	at := s.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		dev, feature := devs[(i*31+1)%len(devs)], names[i%len(names)]
		out.Device, out.Feature = dev, feature
		back.Device, back.Feature = dev, feature
		at = at.Add(time.Microsecond)
		reqOut.ID.Seq, reqOut.At = uint64(2*i+1), at
		reqBack.ID.Seq, reqBack.At = uint64(2*i+2), at
		res, err := s.Apply(reqOut)
		if err != nil || res.Grant.Count != 1 {
			b.Fatalf("checkout: %+v %v", res, err)
		}
		if _, err := s.Apply(reqBack); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}
