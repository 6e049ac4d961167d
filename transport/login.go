package transport

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/password"
)

// loginRequest is the body of POST /api/v1/auth/login.
type loginRequest struct {
	User     *string `json:"user"`
	Password *string `json:"password"`
}

// loginResponse is the answer to a good login.
type loginResponse struct {
	Token   string      `json:"token"`
	Expires string      `json:"expires"`
	User    string      `json:"user"`
	Roles   []core.Role `json:"roles"`
}

// credentials is what a login reads of a user in one read.
type credentials struct {
	known    bool
	hash     string
	roles    []core.Role
	epoch    uint64
	key      []byte
	lifetime time.Duration
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	addrKey := limiterKey(r.RemoteAddr)
	now := s.cfg.Now()
	if ok, wait := s.addrLimiter.take(addrKey, now); !ok {
		return s.rateLimited(w, wait, "too many failed logins from this address; try again later")
	}
	var req loginRequest
	if err := readJSON(w, r, maxLoginBody, &req); err != nil {
		s.addrLimiter.refund(addrKey)
		return err
	}
	if req.User == nil || req.Password == nil {
		s.addrLimiter.refund(addrKey)
		return badRequest("bad_json", `the body wants "user" and "password"`)
	}
	name := *req.User
	userKey := userLimiterKey(name)
	if ok, wait := s.userLimiter.take(userKey, now); !ok {
		s.addrLimiter.refund(addrKey)
		return s.rateLimited(w, wait, "too many failed logins for this user; try again later")
	}
	refund := func() {
		s.addrLimiter.refund(addrKey)
		s.userLimiter.refund(userKey)
	}
	cred, err := s.readCredentials(r.Context(), name)
	if err != nil {
		refund()
		return err
	}
	ok, err := s.checkPassword(r.Context(), cred, *req.Password)
	if err != nil {
		refund()
		return err
	}
	if !ok {
		s.metrics.loginFailed()
		s.log.Warn("login failed", "remote", r.RemoteAddr, "user", name)
		return &apiError{status: http.StatusUnauthorized, code: "bad_credentials", msg: "wrong user name or password"}
	}
	refund()
	if len(cred.key) == 0 {
		return &apiError{status: http.StatusServiceUnavailable, code: "not_ready", msg: "the server has no token key yet; try again shortly"}
	}
	nonce, err := newNonce(s.cfg.Random)
	if err != nil {
		return err
	}
	expires := now.Add(cred.lifetime).Truncate(time.Second)
	token, err := signToken(cred.key, tokenClaims{User: name, Epoch: cred.epoch, Expires: expires.Unix(), Nonce: nonce})
	if err != nil {
		return err
	}
	s.metrics.tokenIssued()
	s.log.Info("login", "remote", r.RemoteAddr, "user", name, "expires", expires)
	writeJSON(w, http.StatusOK, loginResponse{Token: token, Expires: expires.UTC().Format(time.RFC3339), User: name, Roles: cred.roles})
	return nil
}

func (s *Server) rateLimited(w http.ResponseWriter, wait time.Duration, msg string) error {
	s.metrics.loginRateLimited()
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", msg: msg}
}

// readCredentials reads a user's password hash, roles and epoch, the token
// key and the token lifetime in one read. An unknown user is not an error:
// the password is still checked, against a stand-in hash, so that the
// answer takes as long as for a user who exists.
func (s *Server) readCredentials(ctx context.Context, name string) (credentials, error) {
	var c credentials
	err := s.cfg.Store.Read(ctx, func(st *core.State) error {
		p, err := st.Property("security.tokenDuration")
		if err != nil {
			return err
		}
		if c.lifetime, err = time.ParseDuration(p.Value); err != nil {
			return err
		}
		c.key = st.TokenKey()
		c.hash, c.roles, c.epoch, err = st.Credentials(name)
		switch {
		case errors.Is(err, core.ErrUnknownUser):
			return nil
		case err != nil:
			return err
		}
		c.known = true
		return nil
	})
	return c, err
}

// checkPassword runs the key derivation outside the store's read, at most
// kdfSlots at once.
func (s *Server) checkPassword(ctx context.Context, c credentials, pw string) (bool, error) {
	hash := c.hash
	if !c.known {
		var err error
		if hash, err = s.standInHash(); err != nil {
			return false, err
		}
	}
	select {
	case s.kdf <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.kdf }()
	ok, err := password.Verify(hash, pw)
	return ok && c.known, err
}

// standInHash is a hash of a random password, made once, that logins of
// unknown users are checked against.
func (s *Server) standInHash() (string, error) {
	s.standIn.once.Do(func() {
		nonce, err := newNonce(s.cfg.Random)
		if err != nil {
			s.standIn.err = err
			return
		}
		s.standIn.hash, s.standIn.err = s.hashPassword(nonce)
	})
	return s.standIn.hash, s.standIn.err
}

// newPasswordHash hashes a new password once the policy allows it, at
// most kdfSlots at once.
func (s *Server) newPasswordHash(ctx context.Context, pw string) (string, error) {
	if err := password.Check(pw); err != nil {
		return "", err
	}
	select {
	case s.kdf <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.kdf }()
	return s.hashPassword(pw)
}

// callerName is the user a request acts as; anonymous requests have no
// tokens or password of their own.
func callerName(r *http.Request) (string, error) {
	p := principalOf(r)
	if p.user.Name == anonymousName || p.user.Name == "" {
		return "", badRequest("anonymous", "an anonymous request has no session or password; log in as a user")
	}
	return p.user.Name, nil
}

// logout ends every token of the caller, on every node.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	name, err := callerName(r)
	if err != nil {
		return err
	}
	return s.applyNoContent(w, r, &core.Logout{Name: name})
}

// passwordRequest is the body of PUT /api/v1/auth/password.
type passwordRequest struct {
	Current *string `json:"current"`
	New     *string `json:"new"`
}

// changePassword sets the caller's own password after checking the
// current one, and ends the caller's tokens. A wrong current password
// counts against the user's login limit.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	name, err := callerName(r)
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := readJSON(w, r, maxLoginBody, &req); err != nil {
		return err
	}
	if req.Current == nil || req.New == nil {
		return badRequest("bad_json", `the body wants "current" and "new"`)
	}
	if err := password.Check(*req.New); err != nil {
		return err
	}
	userKey := userLimiterKey(name)
	if ok, wait := s.userLimiter.take(userKey, s.cfg.Now()); !ok {
		return s.rateLimited(w, wait, "too many wrong passwords for this user; try again later")
	}
	cred, err := s.readCredentials(r.Context(), name)
	if err != nil {
		s.userLimiter.refund(userKey)
		return err
	}
	ok, err := s.checkPassword(r.Context(), cred, *req.Current)
	if err != nil {
		s.userLimiter.refund(userKey)
		return err
	}
	if !ok {
		s.metrics.loginFailed()
		s.log.Warn("password change refused", "remote", r.RemoteAddr, "user", name)
		return &apiError{status: http.StatusForbidden, code: "bad_credentials", msg: "the current password is wrong"}
	}
	s.userLimiter.refund(userKey)
	hash, err := s.newPasswordHash(r.Context(), *req.New)
	if err != nil {
		return err
	}
	return s.applyNoContent(w, r, &core.SetPassword{Name: name, PasswordHash: hash, Revoke: true})
}
