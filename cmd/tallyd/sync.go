package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/plugins"
)

// The online capability exchange. Every node runs a syncer; only the
// leader's acts. The property backoffice.connector names a connector of
// the config file's "connectors"; when it names one, the leader starts it
// (a go-plugin process: a built-in one is tallyd re-executed), registers
// the main licensing ID's certificate, and sends the pending capability
// request (beginning one when none is pending), then installs the verified
// response. It does so again every backoffice.pollInterval, after
// backoffice.retryInterval when an exchange failed, and at once when a new
// request is begun (an administrator asked for an activation). Usage windows
// are acknowledged by the back office, so usage served by any node reaches
// it once however often a request is sent.

// connectorConfig is a connector in the config file: a built-in one
// ("http" or "dir" with its arguments) or an external binary pinned by its
// SHA-256.
type connectorConfig struct {
	Builtin string   `json:"builtin,omitempty"`
	Args    []string `json:"args,omitempty"`
	Command []string `json:"command,omitempty"`
	SHA256  string   `json:"sha256,omitempty"`
}

// spec is the plugins.Spec of the connector called name.
func (c connectorConfig) spec(name string) (plugins.Spec, error) {
	switch {
	case c.Builtin != "" && len(c.Command) == 0:
		return plugins.BuiltinSpec(name, append([]string{c.Builtin}, c.Args...)...)
	case c.Builtin == "" && len(c.Command) > 0 && c.SHA256 != "":
		return plugins.Spec{Name: name, Command: append(append([]string{}, c.Command...), c.Args...), SHA256: c.SHA256}, nil
	}
	return plugins.Spec{}, fmt.Errorf("connector %q: give builtin (http or dir) with args, or command with sha256", name)
}

// syncIdle is how often a follower, or a leader without a connector, looks
// again.
const syncIdle = 5 * time.Second

type syncer struct {
	store      core.Store
	leader     func() bool
	id         *licensingid.ID
	verifier   *capability.Verifier
	connectors map[string]connectorConfig
	log        *slog.Logger

	kick chan struct{}

	mu         sync.Mutex
	host       *plugins.Host
	hostName   string
	registered bool

	// signed is the last request signed and signedSeq its sequence: a
	// request sent again is the same bytes, which the dir connector
	// recognises (a new signature would make it a new request file).
	signed    []byte
	signedSeq uint64
}

func newSyncer(store core.Store, leader func() bool, id *licensingid.ID, verifier *capability.Verifier,
	connectors map[string]connectorConfig, log *slog.Logger) *syncer {
	return &syncer{store: store, leader: leader, id: id, verifier: verifier, connectors: connectors, log: log, kick: make(chan struct{}, 1)}
}

// begun tells the syncer that a capability request was begun.
func (s *syncer) begun() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run exchanges until ctx ends.
func (s *syncer) run(ctx context.Context) {
	defer s.stopHost()
	for {
		wait := s.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-time.After(wait):
		}
	}
}

// round does one exchange if this node should, and says how long to wait.
func (s *syncer) round(ctx context.Context) time.Duration {
	if !s.leader() {
		s.stopHost()
		return syncIdle
	}
	name, poll, retry, err := s.settings(ctx)
	if err != nil || name == "" {
		s.stopHost()
		return syncIdle
	}
	if err := s.exchange(ctx, name); err != nil {
		if errors.Is(err, plugins.ErrNoResponseYet) {
			s.log.Info("back office has no response yet", "connector", name, "retry_in", retry)
		} else {
			s.log.Warn("back-office exchange failed", "connector", name, "err", err, "retry_in", retry)
		}
		return retry
	}
	return poll
}

// settings reads the backoffice.* properties.
func (s *syncer) settings(ctx context.Context) (name string, poll, retry time.Duration, err error) {
	err = s.store.Read(ctx, func(st *core.State) error {
		values := map[string]string{}
		for _, n := range []string{"backoffice.connector", "backoffice.pollInterval", "backoffice.retryInterval"} {
			p, err := st.Property(n)
			if err != nil {
				return err
			}
			values[n] = p.Value
		}
		name = values["backoffice.connector"]
		var err error
		if poll, err = time.ParseDuration(values["backoffice.pollInterval"]); err != nil {
			return err
		}
		retry, err = time.ParseDuration(values["backoffice.retryInterval"])
		return err
	})
	return name, poll, retry, err
}

// actor is who the audit log says made the syncer's changes.
var syncActor = core.Actor{User: "tallyd", Address: "backoffice"}

// exchange sends the pending request through the connector and installs
// the response.
func (s *syncer) exchange(ctx context.Context, name string) error {
	host, err := s.connector(name)
	if err != nil {
		return err
	}
	if !s.registered {
		if err := host.RegisterLicensingID(ctx, s.id.Certificate); err != nil {
			return fmt.Errorf("register the licensing ID: %w", err)
		}
		s.registered = true
	}
	pending, err := s.pending(ctx)
	if err != nil {
		return err
	}
	req := s.signed
	if req == nil || s.signedSeq != pending.Sequence {
		if req, err = capability.SignRequest(s.id.Key, s.id.Certificate, capability.NewRequest(s.id.Certificate, pending), nil); err != nil {
			return err
		}
		s.signed, s.signedSeq = req, pending.Sequence
	}
	data, err := host.Exchange(ctx, req)
	if err != nil {
		return err
	}
	resp, err := s.verifier.VerifyResponse(data)
	if err != nil {
		return fmt.Errorf("the back office's response is refused: %w", err)
	}
	if _, err := s.store.Apply(ctx, &core.Audited{Actor: syncActor, Command: resp.CompleteSync(core.DefaultSyncSource)}); err != nil {
		return fmt.Errorf("the back office's response is refused: %w", err)
	}
	s.log.Info("back-office exchange done", "connector", name, "request", pending.Sequence, "response", resp.Sequence,
		"lines", len(resp.Lines), "usage_ack", resp.UsageAck)
	return nil
}

// pending returns the pending request, beginning one when none is.
func (s *syncer) pending(ctx context.Context) (core.SyncRequest, error) {
	return core.PendingSyncOf(ctx, s.store, func() error {
		_, err := s.store.Apply(ctx, &core.Audited{Actor: syncActor, Command: &core.BeginSync{}})
		return err
	}, false)
}

// connector returns the running connector called name, starting it (and
// stopping another) as needed.
func (s *syncer) connector(name string) (*plugins.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != nil && s.hostName == name {
		return s.host, nil
	}
	if s.host != nil {
		s.host.Close()
		s.host = nil
	}
	cfg, ok := s.connectors[name]
	if !ok {
		return nil, fmt.Errorf("backoffice.connector names %q, which the config file's connectors do not have", name)
	}
	spec, err := cfg.spec(name)
	if err != nil {
		return nil, err
	}
	host, err := plugins.NewHost(spec, plugins.Config{Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.host, s.hostName, s.registered = host, name, false
	return host, nil
}

func (s *syncer) stopHost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != nil {
		s.host.Close()
		s.host, s.hostName = nil, ""
	}
}
