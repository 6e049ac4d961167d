package raft

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/core"
)

// Config says where a Node keeps its data and how it runs.
type Config struct {
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// NodeID names this node in the raft configuration. It must stay the
	// same across restarts: the bootstrapped configuration names it.
	NodeID string
	// Logger receives the node's messages and raft's own at warning level
	// and above. Default: discard.
	Logger *slog.Logger
	// Now is the leader clock stamped on requests. Default time.Now.
	Now func() time.Time
	// Random picks the node's request session at Open. Default crypto/rand.
	Random io.Reader
	// TickInterval is how often the leader proposes core.Tick. Default 1s.
	TickInterval time.Duration
	// MaxBatch bounds the requests in one log entry. Default 1024, at most
	// 65536.
	MaxBatch int
	// Core tunes the state machine.
	Core core.Config
	// Observe, when set, is called after each request the state accepted
	// (denials and duplicates included, refusals not), on every node, in
	// log order, from raft's apply goroutine. It must not block.
	Observe func(core.Request, core.Result)
	// Describe, when set, adds what the node says of itself to its Status
	// (core.ClusterMember.Info), for the cluster and licensing ID views.
	Describe func() map[string]string
	// Cluster, when set, makes the node a member of a networked cluster.
	Cluster *ClusterConfig

	// level, when set, is the state level the node says it applies in
	// place of core.Level: a node of an older release, in tests.
	level int
}

// Defaults and limits of Config.
const (
	defaultTickInterval = time.Second
	defaultMaxBatch     = 1024
	maxMaxBatch         = 1 << 16
)

// Sentinel errors.
var (
	// ErrNotLeader says this node cannot serve a write or a linearizable
	// read because it is not the leader (or has not yet caught up as one).
	// It is always wrapped together with core.ErrNotApplied.
	ErrNotLeader = errors.New("not the leader")
	// ErrClosed says the node is closed. It is always wrapped together
	// with core.ErrNotApplied.
	ErrClosed = errors.New("raft node closed")
	// ErrMalformedEntry says a log entry could not be read; every request
	// in it is answered with it.
	ErrMalformedEntry = errors.New("malformed log entry")
	// ErrInvalidConfig says Open was given an unusable Config.
	ErrInvalidConfig = errors.New("invalid raft config")
	// ErrSnapshotFormat says a snapshot was not written by this package or
	// by a version it reads.
	ErrSnapshotFormat = errors.New("unreadable snapshot")
)

func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, fmt.Errorf("%w: no data directory", ErrInvalidConfig)
	}
	if c.NodeID == "" {
		return c, fmt.Errorf("%w: no node ID", ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.TickInterval <= 0 {
		c.TickInterval = defaultTickInterval
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = defaultMaxBatch
	}
	c.MaxBatch = min(c.MaxBatch, maxMaxBatch)
	if c.Cluster != nil {
		cc := *c.Cluster
		if err := cc.withDefaults(c.NodeID); err != nil {
			return c, err
		}
		c.Cluster = &cc
	}
	return c, nil
}
