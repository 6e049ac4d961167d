package device

import (
	"net"
	"sync"
	"time"
)

// sourceLimiter bounds the refused onboard and authenticate attempts of one
// source address across all its connections, so that reconnecting does not
// buy more guesses at a first-authentication key. Each source has a bucket
// of burst attempts refilled one per interval; a refusal takes one, and a
// source with none left is turned away before its attempt is checked.
type sourceLimiter struct {
	burst    float64
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	buckets   map[string]*sourceBucket
	lastPrune time.Time
}

type sourceBucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimiter(burst int, interval time.Duration, now func() time.Time) *sourceLimiter {
	return &sourceLimiter{burst: float64(burst), interval: interval, now: now, buckets: map[string]*sourceBucket{}}
}

// source is the address a limit applies to: the IP without the port.
func source(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// refill brings b up to date; the caller holds mu.
func (l *sourceLimiter) refill(b *sourceBucket, now time.Time) {
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.interval))
	b.last = now
}

// allowed reports whether src may make another attempt.
func (l *sourceLimiter) allowed(src string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		return true
	}
	l.refill(b, l.now())
	return b.tokens >= 1
}

// failed takes an attempt from src.
func (l *sourceLimiter) failed(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[src]
	if b == nil {
		b = &sourceBucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
	l.prune(now)
}

// prune forgets sources whose buckets are full again, at most once per
// interval, so that the map does not grow with every address ever seen.
func (l *sourceLimiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < l.interval {
		return
	}
	l.lastPrune = now
	for src, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, src)
		}
	}
}
