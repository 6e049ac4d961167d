package discovery

import (
	"net/netip"
	"sync"
	"time"
)

// Rate limit defaults.
const (
	// DefaultRatePerSource is how many replies per second one source
	// address earns.
	DefaultRatePerSource = 2.0
	// DefaultBurst is how many replies a quiet source may get at once.
	DefaultBurst = 5
	// DefaultRateTotal is how many replies per second all sources together
	// earn, which bounds the signing work a flood of spoofed sources causes.
	DefaultRateTotal = 1000.0
	// DefaultMaxSources bounds the sources tracked at once.
	DefaultMaxSources = 4096
)

// Limits are the reply rate limits of a Responder or an Answerer. Zero
// fields take the defaults.
type Limits struct {
	// RatePerSource is the replies per second one source IP earns, and
	// Burst how many it may spend at once.
	RatePerSource float64
	Burst         int
	// RateTotal is the replies per second all sources together earn, with a
	// burst of one second's worth.
	RateTotal float64
	// MaxSources bounds the per-source buckets kept; a new source finding
	// the table full of recently active ones is refused.
	MaxSources int
}

func (l Limits) withDefaults() Limits {
	if l.RatePerSource <= 0 {
		l.RatePerSource = DefaultRatePerSource
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.RateTotal <= 0 {
		l.RateTotal = DefaultRateTotal
	}
	if l.MaxSources <= 0 {
		l.MaxSources = DefaultMaxSources
	}
	return l
}

// tokenBucket holds up to burst tokens, refilled at rate per second.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
}

// limiter is a token bucket per source IP under a bucket for all sources.
// The table of sources is bounded: buckets that have refilled are pruned
// when it is full, at most once per refill period so that a flood of new
// sources cannot make every packet walk the table.
type limiter struct {
	limits Limits
	now    func() time.Time

	mu        sync.Mutex
	sources   map[netip.Addr]*tokenBucket
	total     tokenBucket
	lastPrune time.Time
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	l = l.withDefaults()
	t := now()
	return &limiter{limits: l, now: now, sources: map[netip.Addr]*tokenBucket{},
		total: tokenBucket{tokens: l.RateTotal, last: t}}
}

// allow takes a token from src's bucket and from the total, or reports
// false and takes nothing.
func (l *limiter) allow(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	burst := float64(l.limits.Burst)
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= l.limits.MaxSources && !l.prune(now) {
			return false
		}
		b = &tokenBucket{tokens: burst, last: now}
		l.sources[src] = b
	}
	b.refill(now, l.limits.RatePerSource, burst)
	l.total.refill(now, l.limits.RateTotal, l.limits.RateTotal)
	if b.tokens < 1 || l.total.tokens < 1 {
		return false
	}
	b.tokens--
	l.total.tokens--
	return true
}

// prune drops the buckets that are full again and reports whether the
// table has room. The caller holds mu.
func (l *limiter) prune(now time.Time) bool {
	period := time.Duration(float64(l.limits.Burst) / l.limits.RatePerSource * float64(time.Second))
	if !l.lastPrune.IsZero() && now.Sub(l.lastPrune) < period {
		return false
	}
	l.lastPrune = now
	burst := float64(l.limits.Burst)
	for src, b := range l.sources {
		b.refill(now, l.limits.RatePerSource, burst)
		if b.tokens >= burst {
			delete(l.sources, src)
		}
	}
	return len(l.sources) < l.limits.MaxSources
}

// size returns how many sources are tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}
