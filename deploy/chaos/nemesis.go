package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// fault is one nemesis as it was applied.
type fault struct {
	Name    string    `json:"name"`
	Targets []string  `json:"targets"`
	Start   time.Time `json:"start"`
	Healed  time.Time `json:"healed"`
	// Recovered is when every node answered again with one leader.
	Recovered time.Time `json:"recovered,omitzero"`
	Error     string    `json:"error,omitempty"`
	// Note says what the fault did that could be seen.
	Note string `json:"note,omitempty"`
}

// nemesis applies faults to a cluster, one at a time.
type nemesis struct {
	c       *cluster
	api     *api
	hold    time.Duration // how long a fault lasts
	upgrade string        // the image a rolling upgrade installs; "" for none
	r       *rand.Rand
	logf    func(format string, args ...any)
}

// leader is the one node that says it leads, when every node in among
// answers.
func (nm *nemesis) leader(ctx context.Context, among []*node) (*node, error) {
	var leaders []*node
	var errs []error
	for _, n := range among {
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		h, err := nm.api.health(hctx, n.ip)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.id, err))
			continue
		}
		if h.Leader {
			leaders = append(leaders, n)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(leaders) != 1 {
		return nil, fmt.Errorf("%d nodes say they lead: %v", len(leaders), ids(leaders))
	}
	return leaders[0], nil
}

// waitStable waits until every node answers and names one leader.
func (nm *nemesis) waitStable(ctx context.Context, timeout time.Duration) (*node, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := nm.leader(ctx, nm.c.nodes)
		if err == nil {
			return l, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("not stable within %s: %w", timeout, err)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

func (nm *nemesis) randomNode() *node { return nm.c.nodes[nm.r.IntN(len(nm.c.nodes))] }

func (nm *nemesis) shuffled() []*node {
	ns := slices.Clone(nm.c.nodes)
	nm.r.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
	return ns
}

func ids(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.id
	}
	return out
}

// kinds of nemesis in the order a run cycles through them.
var nemesisKinds = []string{
	"kill-random", "isolate-leader", "pause", "kill-leader", "partition-halves",
	"partition-bridge", "pause-leader", "disk-full", "rolling-restart",
}

// apply runs one nemesis and heals it, waiting for the cluster to answer
// again with one leader.
func (nm *nemesis) apply(ctx context.Context, kind string) fault {
	f := fault{Name: kind, Start: time.Now().UTC()}
	err := nm.inject(ctx, kind, &f)
	f.Healed = time.Now().UTC()
	if herr := nm.healAll(ctx); herr != nil && err == nil {
		err = herr
	}
	if _, serr := nm.waitStable(ctx, 2*time.Minute); serr != nil {
		err = errors.Join(err, serr)
	} else {
		f.Recovered = time.Now().UTC()
	}
	if err != nil {
		f.Error = err.Error()
	}
	nm.logf("nemesis %s on %s: held until %s, recovered %s %s %s", kind, strings.Join(f.Targets, ","),
		f.Healed.Format("15:04:05.0"), f.Recovered.Format("15:04:05.0"), f.Note, f.Error)
	return f
}

func (nm *nemesis) inject(ctx context.Context, kind string, f *fault) error {
	switch kind {
	case "kill-random", "kill-leader":
		n := nm.randomNode()
		if kind == "kill-leader" {
			l, err := nm.leader(ctx, nm.c.nodes)
			if err != nil {
				return err
			}
			n = l
		}
		f.Targets = []string{n.id}
		if _, err := docker(ctx, time.Minute, "kill", n.container); err != nil {
			return err
		}
		sleep(ctx, nm.hold)
		_, err := docker(ctx, time.Minute, "start", n.container)
		return err
	case "pause", "pause-leader":
		n := nm.randomNode()
		if kind == "pause-leader" {
			l, err := nm.leader(ctx, nm.c.nodes)
			if err != nil {
				return err
			}
			n = l
		}
		f.Targets = []string{n.id}
		if _, err := docker(ctx, time.Minute, "pause", n.container); err != nil {
			return err
		}
		sleep(ctx, nm.hold)
		_, err := docker(ctx, time.Minute, "unpause", n.container)
		return err
	case "isolate-leader":
		l, err := nm.leader(ctx, nm.c.nodes)
		if err != nil {
			return err
		}
		f.Targets = []string{l.id}
		for _, o := range nm.c.nodes {
			if o != l {
				if err := nm.c.cut(ctx, l, o); err != nil {
					return err
				}
			}
		}
		sleep(ctx, nm.hold)
		return nil
	case "partition-halves":
		ns := nm.shuffled()
		minority, majority := ns[:len(ns)/2], ns[len(ns)/2:]
		f.Targets = []string{strings.Join(ids(minority), "+") + " | " + strings.Join(ids(majority), "+")}
		for _, a := range minority {
			for _, b := range majority {
				if err := nm.c.cut(ctx, a, b); err != nil {
					return err
				}
			}
		}
		sleep(ctx, nm.hold)
		return nil
	case "partition-bridge":
		// Two sides that cannot see each other, and one node that sees
		// both.
		ns := nm.shuffled()
		bridge := ns[0]
		rest := ns[1:]
		left, right := rest[:len(rest)/2], rest[len(rest)/2:]
		f.Targets = []string{strings.Join(ids(left), "+") + " <" + bridge.id + "> " + strings.Join(ids(right), "+")}
		for _, a := range left {
			for _, b := range right {
				if err := nm.c.cut(ctx, a, b); err != nil {
					return err
				}
			}
		}
		sleep(ctx, nm.hold)
		return nil
	case "disk-full":
		var n *node
		for _, o := range nm.c.nodes {
			if o.disk != nil {
				n = o
			}
		}
		if n == nil {
			return errors.New("no node has a small disk")
		}
		f.Targets = []string{n.id}
		filled, err := n.disk.fill()
		if err != nil {
			return err
		}
		sleep(ctx, nm.hold)
		// What the node said about it: its log lines since the fill.
		logs, _ := docker(ctx, time.Minute, "logs", "--since", f.Start.Format(time.RFC3339Nano), n.container)
		enospc := strings.Count(strings.ToLower(logs), "no space left")
		f.Note = fmt.Sprintf("%d MB filled; %d log lines say \"no space left\"", filled>>20, enospc)
		return n.disk.empty()
	case "rolling-restart":
		for _, n := range nm.c.nodes {
			f.Targets = append(f.Targets, n.id)
			if _, err := docker(ctx, 2*time.Minute, "restart", "-t", "30", n.container); err != nil {
				return err
			}
			if _, err := nm.waitStable(ctx, 2*time.Minute); err != nil {
				return fmt.Errorf("after restarting %s: %w", n.id, err)
			}
		}
		return nil
	case "rolling-upgrade":
		var versions []string
		defer func() { f.Note = "versions before → after: " + strings.Join(versions, ", ") }()
		for _, n := range nm.c.nodes {
			f.Targets = append(f.Targets, n.id+"→"+nm.upgrade)
			before, _ := nm.api.health(ctx, n.ip)
			if _, err := docker(ctx, 2*time.Minute, "stop", "-t", "30", n.container); err != nil {
				return err
			}
			if err := nm.c.remove(ctx, n); err != nil {
				return err
			}
			if err := nm.c.start(ctx, n, nm.upgrade); err != nil {
				return err
			}
			if _, err := nm.waitStable(ctx, 2*time.Minute); err != nil {
				return fmt.Errorf("after upgrading %s: %w", n.id, err)
			}
			after, _ := nm.api.health(ctx, n.ip)
			versions = append(versions, n.id+" "+before.Version+" → "+after.Version)
		}
		return nil
	}
	return fmt.Errorf("unknown nemesis %q", kind)
}

// healAll undoes whatever may be left: rules flushed, paused nodes
// unpaused, stopped ones started.
func (nm *nemesis) healAll(ctx context.Context) error {
	var errs []error
	for _, n := range nm.c.nodes {
		state, err := docker(ctx, 30*time.Second, "inspect", "-f", "{{.State.Status}}", n.container)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch state {
		case "paused":
			if _, err := docker(ctx, time.Minute, "unpause", n.container); err != nil {
				errs = append(errs, err)
			}
		case "exited", "created":
			if _, err := docker(ctx, time.Minute, "start", n.container); err != nil {
				errs = append(errs, err)
			}
		}
		if err := nm.c.iptables(ctx, n, "-F"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
