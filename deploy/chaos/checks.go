package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tallyhq/tally/core"
)

// check is the result of one check at the end of a run.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// watcher polls every node's features during the run and keeps any that
// shows more in use than total plus overdraft.
type watcher struct {
	api   *api
	nodes []*node

	mu         sync.Mutex
	polls      int
	failures   int
	violations []string
}

func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		var wg sync.WaitGroup
		for _, n := range w.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				fs, err := w.api.features(pctx, n.ip)
				cancel()
				w.mu.Lock()
				defer w.mu.Unlock()
				if err != nil {
					w.failures++
					return
				}
				w.polls++
				for _, f := range fs {
					if f.Counted && f.Used > f.Total+f.Overdraft {
						w.violations = append(w.violations, fmt.Sprintf("%s %s: %s %s shows %d used of %d+%d",
							time.Now().UTC().Format(time.RFC3339Nano), n.id, f.Name, f.Version, f.Used, f.Total, f.Overdraft))
					}
				}
			}()
		}
		wg.Wait()
		sleep(ctx, 500*time.Millisecond)
	}
}

// checkLinearizable checks the history with porcupine and keeps the
// visualization when it fails.
func checkLinearizable(f *fleet, capacity int64, dir string, timeout time.Duration, sessionOrder bool) check {
	ops := f.operations(sessionOrder)
	model := leaseModel(capacity)
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	c := check{Name: "linearizable (an unknown outcome may land any time later)"}
	file := "history.html"
	if sessionOrder {
		c.Name = "linearizable in session order (an abandoned request never lands after the device's next one, which would undo an acknowledged lease)"
		file = "history-session-order.html"
	}
	switch res {
	case porcupine.Ok:
		c.OK = true
		c.Detail = fmt.Sprintf("%d operations (%d with unknown outcome) linearizable against a counted feature of capacity %d", len(ops), f.unknownCount(), capacity)
	case porcupine.Illegal:
		path := filepath.Join(dir, file)
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			path = "(visualization failed: " + err.Error() + ")"
		}
		c.Detail = fmt.Sprintf("%d operations are NOT linearizable; see %s and history.json", len(ops), path)
		if sessionOrder {
			if u := f.undone(); len(u) > 0 {
				c.Detail += fmt.Sprintf(". %d acknowledged outcomes changed behind the device's back, e.g.: %s", len(u), strings.Join(u[:min(len(u), 3)], "; "))
			}
		}
	default:
		// Not a failure of the cluster, but not a proof either.
		c.OK = true
		c.Detail = fmt.Sprintf("porcupine gave up on %d operations within %s: inconclusive", len(ops), timeout)
	}
	return c
}

// waitConverged waits until every node shows the same applied index and
// the same features and devices, at this release's state level (so the
// rules of that level, per-connection device requests among them, were in
// force once every node ran this release).
func waitConverged(ctx context.Context, a *api, nodes []*node, timeout time.Duration) check {
	c := check{Name: "converged"}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		diff, err := compareNodes(ctx, a, nodes)
		if err == nil && diff == "" {
			c.OK = true
			c.Detail = fmt.Sprintf("%d nodes show the same applied index, features and devices, at state level %d", len(nodes), core.Level)
			return c
		}
		if err != nil {
			last = err.Error()
		} else {
			last = diff
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.Detail = fmt.Sprintf("not converged within %s: %s", timeout, last)
			return c
		}
		sleep(ctx, time.Second)
	}
}

func compareNodes(ctx context.Context, a *api, nodes []*node) (string, error) {
	views := map[string]string{}
	applied := map[string]uint64{}
	for _, n := range nodes {
		cv, err := a.cluster(ctx, n.ip)
		if err != nil {
			return "", fmt.Errorf("%s cluster: %w", n.id, err)
		}
		if cv.StateLevel != core.Level {
			return fmt.Sprintf("%s is at state level %d, not %d", n.id, cv.StateLevel, core.Level), nil
		}
		for _, m := range cv.Members {
			if m.ID == n.id {
				applied[n.id] = m.AppliedIndex
			}
		}
		fs, err := a.features(ctx, n.ip)
		if err != nil {
			return "", fmt.Errorf("%s features: %w", n.id, err)
		}
		ds, _, err := a.devices(ctx, n.ip)
		if err != nil {
			return "", fmt.Errorf("%s devices: %w", n.id, err)
		}
		var devs []string
		for _, d := range ds {
			devs = append(devs, d.ID.Type+":"+d.ID.Value+"@"+d.Expiry)
		}
		slices.Sort(devs)
		b, _ := json.Marshal(struct {
			F []feature
			D []string
		}{fs, devs})
		views[n.id] = string(b)
	}
	var diffs []string
	first := nodes[0].id
	for _, n := range nodes[1:] {
		if applied[n.id] != applied[first] {
			diffs = append(diffs, fmt.Sprintf("applied %s=%d %s=%d", first, applied[first], n.id, applied[n.id]))
		}
		if views[n.id] != views[first] {
			diffs = append(diffs, fmt.Sprintf("%s and %s differ in features or devices", first, n.id))
		}
	}
	return strings.Join(diffs, "; "), nil
}

// checkLeases checks that every node shows each device of the fleet
// holding a count its history allows: an acknowledged lease is never lost.
func checkLeases(ctx context.Context, a *api, nodes []*node, f *fleet) check {
	c := check{Name: "no acknowledged lease lost", OK: true}
	want := f.expectedHeld()
	var bad []string
	for _, n := range nodes {
		served, err := a.served(ctx, n.ip, f.feature, f.version)
		if err != nil {
			c.OK = false
			bad = append(bad, fmt.Sprintf("%s: %v", n.id, err))
			continue
		}
		got := map[string]int64{}
		for _, s := range served {
			got[s.Device.Value] += s.Count
		}
		for d := range f.devices {
			id := f.deviceID(d)
			if !want[d][got[id]] {
				c.OK = false
				bad = append(bad, fmt.Sprintf("%s shows %s holding %d, its history allows %v", n.id, id, got[id], keysOf(want[d])))
			}
		}
	}
	if c.OK {
		c.Detail = fmt.Sprintf("every node shows each of %d devices holding what its last acknowledged operation (or a later unknown one) left", f.devices)
	} else {
		c.Detail = strings.Join(bad, "; ")
	}
	return c
}

func keysOf(m map[int64]bool) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkKeys checks that no one-time key onboarded two devices: at most
// one contender was told it won, and every node names the same user of
// the key, the winner where one was told so.
func checkKeys(ctx context.Context, a *api, nodes []*node, races []keyRace) check {
	c := check{Name: "one-time keys used at most once", OK: true}
	var bad []string
	usedBy := map[string]map[string]string{} // node → key → device
	for _, n := range nodes {
		ks, err := a.keys(ctx, n.ip)
		if err != nil {
			c.OK = false
			bad = append(bad, fmt.Sprintf("%s: %v", n.id, err))
			continue
		}
		m := map[string]string{}
		for _, k := range ks {
			m[k.ID] = k.UsedBy.Value
		}
		usedBy[n.id] = m
	}
	won := 0
	for _, r := range races {
		var winners, unknown []string
		for _, ct := range r.Contenders {
			if ct.Won {
				winners = append(winners, ct.Device)
			}
			if ct.Unknown {
				unknown = append(unknown, ct.Device)
			}
		}
		if len(winners) > 1 {
			c.OK = false
			bad = append(bad, fmt.Sprintf("key %s onboarded %v", r.Key, winners))
		}
		won += len(winners)
		for node, m := range usedBy {
			u := m[r.Key]
			switch {
			case len(winners) == 1 && u != winners[0]:
				c.OK = false
				bad = append(bad, fmt.Sprintf("%s names %q the user of key %s, which %s was told it won", node, u, r.Key, winners[0]))
			case len(winners) == 0 && u != "" && !slices.Contains(unknown, u):
				c.OK = false
				bad = append(bad, fmt.Sprintf("%s names %q the user of key %s, which no contender with an unknown outcome is", node, u, r.Key))
			}
		}
	}
	if c.OK {
		c.Detail = fmt.Sprintf("%d keys raced by %d devices each: %d won, none twice; every node names the winner", len(races), contendersOf(races), won)
	} else {
		c.Detail = strings.Join(bad, "; ")
	}
	return c
}

func contendersOf(races []keyRace) int {
	if len(races) == 0 {
		return 0
	}
	return len(races[0].Contenders)
}

// checkAudit checks that the audit chain verifies on every node.
func checkAudit(ctx context.Context, a *api, nodes []*node) check {
	c := check{Name: "audit chain verifies", OK: true}
	var parts []string
	for _, n := range nodes {
		v, err := a.audit(ctx, n.ip)
		switch {
		case err != nil:
			c.OK = false
			parts = append(parts, fmt.Sprintf("%s: %v", n.id, err))
		case !v.Verified:
			c.OK = false
			parts = append(parts, fmt.Sprintf("%s: %d records, does NOT verify", n.id, v.Total))
		default:
			parts = append(parts, fmt.Sprintf("%s: %d records verify", n.id, v.Total))
		}
	}
	c.Detail = strings.Join(parts, "; ")
	return c
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
