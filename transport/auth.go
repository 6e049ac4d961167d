package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
)

// Limits of the login state.
const (
	// nonceBytes of randomness make two tokens of one login second differ.
	nonceBytes = 16
	// maxTokenLen bounds a bearer token before it is decoded.
	maxTokenLen = 1024
	// loginBurst failed logins are allowed from one address at once, then
	// one more every loginRefill.
	loginBurst  = 5
	loginRefill = 12 * time.Second
	// userLoginBurst failed logins are allowed for one user name at once,
	// from any number of addresses, then one more every loginRefill. It is
	// above loginBurst so that a single address meets its own limit first.
	userLoginBurst = 10
	// maxLoginKeys bounds the addresses or user names a limiter remembers.
	maxLoginKeys = 10000
	// kdfSlots bounds the password hashes computed at once (each takes
	// 64 MiB), so that a burst of logins cannot exhaust memory.
	kdfSlots = 4
)

// anonymousName is the caller of a request let through without a token
// from loopback while security.enabled is false. It holds every right, as
// the property promises, and is named so in the audit log.
const anonymousName = "anonymous@loopback"

// Tokens are stateless, so that every node of a cluster accepts them: a
// token is
//
//	base64url(JSON claims) "." base64url(HMAC-SHA256(token key, JSON claims))
//
// with the replicated token key (core.State.TokenKey). It is valid while the
// MAC matches, it has not expired, its user exists and the user's token
// epoch is still the one it names; a logout, a password change with revoke
// and the loss of a role move the epoch on and so end every earlier token.
type tokenClaims struct {
	User    string `json:"user"`
	Epoch   uint64 `json:"epoch"`
	Expires int64  `json:"expires"` // Unix seconds
	Nonce   string `json:"nonce"`
}

// errBadToken is any reason a presented token is not accepted; which one is
// not told to the client.
var errBadToken = errors.New("invalid token")

// signToken writes claims as a token signed with key.
func signToken(key []byte, c tokenClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, payload)), nil
}

func tokenMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)
}

// openToken checks a token's MAC with key and returns its claims. It does
// not look at expiry or epoch.
func openToken(key []byte, token string) (tokenClaims, error) {
	var c tokenClaims
	if len(key) == 0 || len(token) > maxTokenLen {
		return c, errBadToken
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return c, errBadToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return c, errBadToken
	}
	mac, err := base64.RawURLEncoding.DecodeString(m64)
	if err != nil || !hmac.Equal(mac, tokenMAC(key, payload)) {
		return c, errBadToken
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.User == "" {
		return c, errBadToken
	}
	return c, nil
}

// newNonce reads a token nonce from random.
func newNonce(random io.Reader) (string, error) {
	var b [nonceBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// principal is who makes a request and from where.
type principal struct {
	user    core.User
	address string // the remote IP, without port
}

func (p principal) actor() core.Actor { return core.Actor{User: p.user.Name, Address: p.address} }

type principalKey struct{}

// principalOf returns the caller that authorize put in the request's
// context.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	if p.address == "" {
		p.address = remoteIP(r.RemoteAddr)
	}
	return p
}

// authorize wraps the handler of a route that needs a token: it
// authenticates the caller, refuses one without the route's right with 403,
// and passes the caller on in the request's context.
func (s *Server) authorize(rt route) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		user, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if rt.role != anyRole && !user.Has(rt.role) {
			s.metrics.accessDenied()
			return &apiError{status: http.StatusForbidden, code: "access_denied", msg: "access denied: needs the " + rt.role.String() + " role"}
		}
		p := principal{user: user, address: remoteIP(r.RemoteAddr)}
		return rt.handler(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// authenticate finds the user a request acts as: the one its bearer token
// names, or anonymous for a request without an Authorization header from a
// loopback address while the property security.enabled is false.
func (s *Server) authenticate(r *http.Request) (core.User, error) {
	token, present := bearerToken(r)
	user, _, err := s.checkToken(r.Context(), token, present, r.RemoteAddr)
	return user, err
}

// checkToken is the one check of a presented token, for requests and for
// the events WebSocket (whose token comes in its first message): the user
// the token names and when it expires (0 for the anonymous user, who has
// no token), or a 401 apiError. Without a token (present false), a caller
// from a loopback address is anonymous while security.enabled is false.
func (s *Server) checkToken(ctx context.Context, token string, present bool, remoteAddr string) (core.User, int64, error) {
	if !present {
		if isLoopback(remoteAddr) {
			enabled, err := s.securityEnabled(ctx)
			if err != nil {
				return core.User{}, 0, err
			}
			if !enabled {
				return core.User{Name: anonymousName, Roles: []core.Role{core.RoleAdmin}}, 0, nil
			}
		}
		return core.User{}, 0, &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "no bearer token; log in at POST /api/v1/auth/login"}
	}
	now := s.cfg.Now()
	var user core.User
	var expires int64
	err := s.cfg.Store.Read(ctx, func(st *core.State) error {
		c, err := openToken(st.TokenKey(), token)
		if err != nil {
			return err
		}
		if now.Unix() >= c.Expires {
			return errBadToken
		}
		_, roles, epoch, err := st.Credentials(c.User)
		if err != nil || epoch != c.Epoch {
			return errBadToken
		}
		user, expires = core.User{Name: c.User, Roles: roles}, c.Expires
		return nil
	})
	if errors.Is(err, errBadToken) {
		return core.User{}, 0, &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "the bearer token is invalid or has expired; log in again"}
	}
	return user, expires, err
}

func (s *Server) securityEnabled(ctx context.Context) (bool, error) {
	var v string
	err := s.cfg.Store.Read(ctx, func(st *core.State) error {
		p, err := st.Property("security.enabled")
		v = p.Value
		return err
	})
	return v != "false", err
}

// loginLimiter is a token bucket per key: a remote address (an IPv6
// address counts by its /64) or a user name. Every login attempt takes a
// token and a successful one gives it back, so only failures use the bucket
// up, and concurrent guesses cannot overrun it.
type loginLimiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLoginLimiter(burst int, refill time.Duration) *loginLimiter {
	return &loginLimiter{burst: float64(burst), refill: refill, buckets: map[string]*bucket{}}
}

// take takes a token for an attempt from key. When none is left it returns
// false and how long until one is.
func (l *loginLimiter) take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxLoginKeys {
			l.sweep(now)
		}
		if len(l.buckets) >= maxLoginKeys {
			// Under a login flood from this many keys, new ones wait.
			return false, l.refill
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refillBucket(b, now)
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) * float64(l.refill))
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
		b.tokens = min(b.tokens+1, l.burst)
	}
}

// sweep forgets keys whose bucket is full again: they carry no state.
func (l *loginLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refillBucket(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

func (l *loginLimiter) refillBucket(b *bucket, now time.Time) {
	if now.After(b.last) {
		b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.refill))
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

// userLimiterKey is the key a user name counts against; names longer than
// any user's share the key of their first bytes, which bounds the memory
// the limiter spends on them.
func userLimiterKey(name string) string {
	if len(name) > core.MaxUserNameLen {
		return name[:core.MaxUserNameLen]
	}
	return name
}

// remoteIP is the IP of a request's remote address, as the audit log
// records it.
func remoteIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return host
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
