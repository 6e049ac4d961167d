package transport

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limits of the in-memory login state.
const (
	tokenBytes = 32
	// maxTokens bounds the live tokens; past it the soonest to expire go.
	maxTokens = 4096
	// loginBurst failed logins are allowed from one address at once, then
	// one more every loginRefill.
	loginBurst  = 5
	loginRefill = 12 * time.Second
	// maxLoginAddresses bounds the addresses the limiter remembers.
	maxLoginAddresses = 10000
)

// tokenStore keeps the bearer tokens handed out at login, by SHA-256 of the
// token, so that looking one up does not compare secrets byte by byte.
type tokenStore struct {
	mu     sync.Mutex
	expiry map[[sha256.Size]byte]time.Time
}

func newTokenStore() *tokenStore {
	return &tokenStore{expiry: map[[sha256.Size]byte]time.Time{}}
}

// issue makes a token from random that is valid until expires.
func (ts *tokenStore) issue(random io.Reader, now, expires time.Time) (string, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.expiry) >= maxTokens {
		ts.sweep(now)
	}
	for len(ts.expiry) >= maxTokens {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, exp := range ts.expiry {
			if at.IsZero() || exp.Before(at) {
				oldest, at = k, exp
			}
		}
		delete(ts.expiry, oldest)
	}
	ts.expiry[sha256.Sum256([]byte(token))] = expires
	return token, nil
}

// valid reports whether token was issued and has not expired at now.
func (ts *tokenStore) valid(token string, now time.Time) bool {
	key := sha256.Sum256([]byte(token))
	ts.mu.Lock()
	defer ts.mu.Unlock()
	exp, ok := ts.expiry[key]
	if !ok {
		return false
	}
	if !now.Before(exp) {
		delete(ts.expiry, key)
		return false
	}
	return true
}

// live counts the tokens not yet expired at now.
func (ts *tokenStore) live(now time.Time) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.sweep(now)
	return len(ts.expiry)
}

func (ts *tokenStore) sweep(now time.Time) {
	for k, exp := range ts.expiry {
		if !now.Before(exp) {
			delete(ts.expiry, k)
		}
	}
}

// loginLimiter is a token bucket per remote address (an IPv6 address counts
// by its /64). Every login attempt takes a token and a successful one gives
// it back, so only failures use the bucket up, and concurrent guesses
// cannot overrun it.
type loginLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{buckets: map[string]*bucket{}} }

// take takes a token for an attempt from key. When none is left it returns
// false and how long until one is.
func (l *loginLimiter) take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxLoginAddresses {
			l.sweep(now)
		}
		if len(l.buckets) >= maxLoginAddresses {
			// Under a login flood from this many addresses, new ones wait.
			return false, loginRefill
		}
		b = &bucket{tokens: loginBurst, last: now}
		l.buckets[key] = b
	}
	b.refill(now)
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) * float64(loginRefill))
		return false, max(wait, time.Second)
	}
	b.tokens--
	return true, 0
}

// refund gives back the token of a successful attempt.
func (l *loginLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = min(b.tokens+1, loginBurst)
	}
}

// sweep forgets addresses whose bucket is full again: they carry no state.
func (l *loginLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		b.refill(now)
		if b.tokens >= loginBurst {
			delete(l.buckets, k)
		}
	}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(loginBurst, b.tokens+float64(now.Sub(b.last))/float64(loginRefill))
		b.last = now
	}
}

// limiterKey is the address a request counts against: the remote IP, or
// its /64 for IPv6.
func limiterKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// isLoopback reports whether the request came from a loopback address.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// bearerToken returns the token of an "Authorization: Bearer" header and
// whether the header was present at all.
func bearerToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// secretEqual compares two secrets in time that depends on neither.
func secretEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
