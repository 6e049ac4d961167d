package device

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/core"
)

// policy is what the handler needs of the licensing properties.
type policy struct {
	responseLifetime time.Duration
	borrow           time.Duration
	renewPercent     int64
	gen              uint64
	loaded           time.Time
}

// policyMaxAge bounds how long a cached policy is trusted without a change
// seen through Notify (a snapshot install does not pass through Notify).
const policyMaxAge = time.Minute

// policyCache keeps the policy between property changes, so that a
// checkout does not need a read of the store. Notify invalidates it when a
// property or the producer's locks may have changed.
type policyCache struct {
	store core.Store
	now   func() time.Time
	gen   atomic.Uint64
	cur   atomic.Pointer[policy]
	mu    sync.Mutex // one load at a time
}

func (c *policyCache) invalidate() { c.gen.Add(1) }

func (c *policyCache) fresh(p *policy) bool {
	return p != nil && p.gen == c.gen.Load() && c.now().Sub(p.loaded) < policyMaxAge
}

// get returns the policy in force, loading it when stale. When a load fails
// a previously loaded policy is used.
func (c *policyCache) get(ctx context.Context) (policy, error) {
	if p := c.cur.Load(); c.fresh(p) {
		return *p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.cur.Load(); c.fresh(p) {
		return *p, nil
	}
	gen := c.gen.Load()
	var p policy
	err := c.store.Read(ctx, func(s *core.State) error {
		get := func(name string) string {
			prop, err := s.Property(name)
			if err != nil {
				return ""
			}
			return prop.Value
		}
		p.responseLifetime, _ = time.ParseDuration(get("licensing.responseLifetime"))
		p.borrow, _ = time.ParseDuration(get("licensing.borrowInterval"))
		p.renewPercent, _ = strconv.ParseInt(get("licensing.renewInterval"), 10, 64)
		return nil
	})
	if err != nil {
		if old := c.cur.Load(); old != nil {
			return *old, nil
		}
		return policy{}, err
	}
	if p.responseLifetime <= 0 {
		p.responseLifetime = 24 * time.Hour
	}
	p.gen, p.loaded = gen, c.now()
	c.cur.Store(&p)
	return p, nil
}
