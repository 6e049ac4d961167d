package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// deviceConfig is a load device with hostid id.
func deviceConfig(id string) deviceproto.ClientConfig {
	return deviceproto.ClientConfig{
		TLS:                &tls.Config{InsecureSkipVerify: true},
		Hello:              deviceproto.Hello{HostIDs: []deviceproto.HostID{{Value: id, Type: "STRING"}}},
		SkipSignatureCheck: true,
	}
}

// failover runs checkouts through a follower of a cluster of three, kills
// the leader with SIGKILL and measures the time until a checkout succeeds
// again; devices that hold a viewer lease granted before and around the
// kill are then looked up on the survivors.
func failover(ctx context.Context, o *options, r *report) error {
	nodes, err := startCluster(ctx, o, "f")
	if err != nil {
		return err
	}
	defer stopAll(nodes)
	st, err := clusterStatus(o, nodes[0])
	if err != nil {
		return err
	}
	var leader, follower *node
	var survivors []*node
	for _, n := range nodes {
		if n.name == st.Leader {
			leader = n
		} else {
			survivors = append(survivors, n)
		}
	}
	if leader == nil {
		return fmt.Errorf("no leader in %+v", st)
	}
	follower = survivors[0]

	const probes, holders = 32, 20
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	dial := func(id string) (*deviceproto.Client, error) {
		return deviceproto.Dial(dialCtx, follower.ws(), deviceConfig(id))
	}
	var clients []*deviceproto.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	holdC := make([]*deviceproto.Client, holders)
	for i := range holders {
		c, err := dial(fmt.Sprintf("failover-hold-%d", i))
		if err != nil {
			return err
		}
		holdC[i] = c
		clients = append(clients, c)
	}

	// Probes check out and return reader through the follower, each
	// request bounded, and record when each success came back.
	var (
		mu        sync.Mutex
		successes []success
		failures  int
	)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	for i := range probes {
		c, err := dial(fmt.Sprintf("failover-probe-%d", i))
		if err != nil {
			return err
		}
		clients = append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := deviceproto.FeatureRequest{Name: "reader", Version: "2022.01", Count: 1}
			for runCtx.Err() == nil {
				started := time.Now()
				rctx, cancel := context.WithTimeout(runCtx, time.Second)
				res, err := c.Checkout(rctx, want)
				if err == nil && len(res.Denials) == 0 {
					_, err = c.Return(rctx, deviceproto.FeatureRef{Name: "reader", Version: "2022.01"})
				}
				cancel()
				mu.Lock()
				if err == nil {
					successes = append(successes, success{started, time.Now()})
				} else if runCtx.Err() == nil {
					failures++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	// Holders check out one viewer each, from one second before the kill
	// to one second after it, and keep it.
	sleep(ctx, 2*time.Second)
	killAt := time.Now().Add(time.Second)
	granted := map[string]bool{}
	var hmu sync.Mutex
	for i, c := range holdC {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(killAt.Add(time.Duration(i-holders/2) * 100 * time.Millisecond)))
			rctx, cancel := context.WithTimeout(runCtx, 5*time.Second)
			defer cancel()
			res, err := c.Checkout(rctx, deviceproto.FeatureRequest{Name: "viewer", Version: "2.0", Count: 1})
			if err == nil && len(res.Denials) == 0 && len(res.Grants) > 0 {
				hmu.Lock()
				granted[fmt.Sprintf("failover-hold-%d", i)] = true
				hmu.Unlock()
			}
		}()
	}
	time.Sleep(time.Until(killAt))
	leader.kill()
	killed := time.Now()
	logf("killed leader %s", leader.name)
	recovered := time.Duration(-1)
	deadline := killed.Add(30 * time.Second)
	for time.Now().Before(deadline) && recovered < 0 {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, s := range successes {
			// The first success of a request sent after the kill: one in
			// flight before it proves nothing about the new leader.
			if s.started.After(killed) {
				recovered = s.done.Sub(killed)
				break
			}
		}
		mu.Unlock()
	}
	// Keep the load a little longer to see it steady.
	sleep(ctx, 2*time.Second)
	stopRun()
	wg.Wait()
	var lastBefore time.Time
	mu.Lock()
	gapStart := killed
	for _, s := range successes {
		if s.done.Before(killed) && s.done.After(lastBefore) {
			lastBefore = s.done
		}
	}
	if !lastBefore.IsZero() {
		gapStart = lastBefore
	}
	mu.Unlock()

	// The survivors must show every lease that was granted.
	lost := []string{}
	time.Sleep(time.Second)
	for id := range granted {
		for _, n := range survivors {
			held, err := viewerLease(o, n, id)
			if err != nil || held < 1 {
				lost = append(lost, fmt.Sprintf("%s on %s (%d, %v)", id, n.name, held, err))
			}
		}
	}
	r.detail("failover", map[string]any{"leader": leader.name, "through": follower.name, "grantedViewers": len(granted),
		"probeFailures": failures, "lastSuccessBeforeKillMsBefore": killed.Sub(gapStart).Milliseconds(), "lost": lost})
	if recovered < 0 {
		r.add(figure{Target: targetFailover, Want: "<= 2 s", Got: "no checkout within 30 s", Status: statusMissed, Source: "3 nodes, SIGKILL of the leader"})
	} else {
		s := recovered.Seconds()
		r.add(figure{Target: targetFailover, Want: "<= 2 s", Got: fmt.Sprintf("%.2f s", s), Value: s, Unit: "s", Status: atMost(s, 2),
			Source: fmt.Sprintf("3 tallyd processes, %d devices checking out through follower %s, SIGKILL of leader %s", probes, follower.name, leader.name),
			Note:   fmt.Sprintf("from the kill to the first checkout+return, sent after the kill, that succeeded; %d requests failed or timed out (1 s bound) meanwhile", failures)})
	}
	st2 := statusMet
	if len(lost) > 0 {
		st2 = statusMissed
	}
	r.add(figure{Target: targetFailoverLoss, Want: "0 lost", Got: fmt.Sprintf("%d lost of %d granted", len(lost), len(granted)), Value: float64(len(lost)),
		Status: st2, Source: fmt.Sprintf("%d devices each checked out one viewer from 1 s before to 1 s after the kill; each granted lease looked up on both survivors", holders)})
	return nil
}

// success is a checkout and return that succeeded: when it was sent and
// when its return came back.
type success struct{ started, done time.Time }

// viewerLease is how many viewer 2.0 the node says device holds.
func viewerLease(o *options, n *node, device string) (int64, error) {
	out, err := n.ctl(o, "--json", "devices", "show", "STRING", device)
	if err != nil {
		return -1, fmt.Errorf("%v: %s", err, oneLine(out))
	}
	var d struct {
		Leases []struct {
			Feature string `json:"feature"`
			Version string `json:"version"`
			Count   int64  `json:"count"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return -1, err
	}
	for _, l := range d.Leases {
		if l.Feature == "viewer" && l.Version == "2.0" {
			return l.Count, nil
		}
	}
	return 0, nil
}
