package transport

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

// History for the UI's charts: every Config.HistoryInterval (default one
// minute) the node samples how many devices are online on it and how many
// counts of each feature are used, and keeps the last 24 hours (at most
// maxHistoryPoints samples) in memory. It is per node and not replicated:
// another node has its own, and a restart starts afresh.

const (
	defaultHistoryInterval = time.Minute
	historySpan            = 24 * time.Hour
	maxHistoryPoints       = 1440
)

// historySampler keeps the samples in rings: one of times and devices
// online, and one of used counts per feature version, allocated when that
// version is first seen in use. All rings share one index, so position i of
// each is the same sample; a ring allocated late holds zeros before it.
type historySampler struct {
	interval time.Duration

	mu       sync.Mutex
	times    []time.Time
	online   []int
	features map[string][]*usedRing // by feature name
	next     int                    // where the next sample goes
	n        int                    // samples held
}

// usedRing holds the used counts of one feature version.
type usedRing struct {
	version version.Version
	used    []int64
}

func newHistorySampler(interval time.Duration) *historySampler {
	if interval <= 0 {
		interval = defaultHistoryInterval
	}
	size := int(min(maxHistoryPoints, max(1, (historySpan+interval-1)/interval)))
	return &historySampler{interval: interval, times: make([]time.Time, size), online: make([]int, size), features: map[string][]*usedRing{}}
}

// featureUse is the used count of one feature version at a sample.
type featureUse struct {
	name    string
	version version.Version
	used    int64
}

// add records a sample and reports whether any used count differs from
// the previous sample.
func (h *historySampler) add(at time.Time, online int, use []featureUse) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	size := len(h.times)
	i, prev := h.next, (h.next+size-1)%size
	h.times[i], h.online[i] = at, online
	seen := make(map[*usedRing]bool, len(use))
	for _, u := range use {
		r := h.ring(u.name, u.version, u.used > 0)
		if r == nil {
			continue
		}
		seen[r] = true
		r.used[i] = u.used
	}
	for _, rings := range h.features {
		for _, r := range rings {
			if !seen[r] {
				r.used[i] = 0 // the version is gone from the rights
			}
			if h.n > 0 && r.used[i] != r.used[prev] {
				changed = true
			}
		}
	}
	h.next = (i + 1) % size
	h.n = min(h.n+1, size)
	return changed
}

// ring finds the ring of a feature version; when there is none it makes
// one if create is set.
func (h *historySampler) ring(name string, v version.Version, create bool) *usedRing {
	for _, r := range h.features[name] {
		if version.Compare(r.version, v) == 0 {
			return r
		}
	}
	if !create {
		return nil
	}
	r := &usedRing{version: v, used: make([]int64, len(h.times))}
	h.features[name] = append(h.features[name], r)
	return r
}

// historyPoint is one sample as GET /api/v1/history answers it.
type historyPoint struct {
	At            string `json:"at"`
	DevicesOnline int    `json:"devicesOnline"`
	Used          *int64 `json:"used,omitempty"`
}

// historyResponse is the answer of GET /api/v1/history.
type historyResponse struct {
	IntervalSeconds float64        `json:"intervalSeconds"`
	Points          []historyPoint `json:"points"`
}

// points returns the samples oldest first. With a feature name, each
// carries the used counts of its rings summed (all versions, or those
// equal to v); a feature with no ring gets zeros when known is set and no
// points otherwise.
func (h *historySampler) points(name string, v *version.Version, known bool) []historyPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	var rings []*usedRing
	if name != "" {
		for _, r := range h.features[name] {
			if v == nil || version.Compare(r.version, *v) == 0 {
				rings = append(rings, r)
			}
		}
		if len(rings) == 0 && !known {
			return []historyPoint{}
		}
	}
	size := len(h.times)
	out := make([]historyPoint, 0, h.n)
	for k := range h.n {
		i := (h.next - h.n + k + size) % size
		p := historyPoint{At: h.times[i].UTC().Format(time.RFC3339), DevicesOnline: h.online[i]}
		if name != "" {
			var used int64
			for _, r := range rings {
				used += r.used[i]
			}
			p.Used = &used
		}
		out = append(out, p)
	}
	return out
}

// RunHistory samples the history for GET /api/v1/history at once and then
// every Config.HistoryInterval, until ctx ends. A sample whose used counts
// differ from the last one raises the lease topics on the events
// connections: leases that simply run out change no command's result, so
// this is how the UI learns of them, within one interval.
func (s *Server) RunHistory(ctx context.Context) {
	t := time.NewTicker(s.history.interval)
	defer t.Stop()
	for {
		s.sampleHistory(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleHistory takes one sample at Config.Now.
func (s *Server) sampleHistory(ctx context.Context) {
	at := s.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, s.history.interval)
	defer cancel()
	var use []featureUse
	online := 0
	err := s.cfg.Store.Read(ctx, func(st *core.State) error {
		for _, f := range st.Features() {
			use = append(use, featureUse{name: f.Name, version: f.Version, used: f.Used})
		}
		if s.cfg.OnlineCount == nil && s.cfg.Online != nil {
			for _, d := range st.Devices() {
				if s.cfg.Online(d.ID) {
					online++
				}
			}
		}
		return nil
	})
	if err != nil {
		// No reading (no leader, shutting down): no sample, rather than
		// one that shows nothing in use.
		s.log.Debug("history sample skipped", "err", err)
		return
	}
	if s.cfg.OnlineCount != nil {
		online = s.cfg.OnlineCount()
	}
	if s.history.add(at, online, use) {
		s.hub.raise(leaseTopics)
	}
}

func (s *Server) readHistory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name, versionText := q.Get("feature"), q.Get("version")
	var v *version.Version
	if versionText != "" {
		if name == "" {
			return badRequest("bad_query", "version needs feature")
		}
		parsed, err := version.Parse(versionText)
		if err != nil {
			return err
		}
		v = &parsed
	}
	known := false
	if name != "" {
		err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
			for _, f := range st.Features() {
				if f.Name == name && (v == nil || version.Compare(f.Version, *v) == 0) {
					known = true
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, historyResponse{IntervalSeconds: s.history.interval.Seconds(), Points: s.history.points(name, v, known)})
	return nil
}
