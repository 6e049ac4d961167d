package core

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Role is a right an administrator holds.
type Role uint8

// Roles. ADMIN holds every right; READ allows the views only.
const (
	RoleAdmin        Role = iota + 1 // everything, including user management
	RoleRead                         // views only
	RoleReservations                 // reservations and license pools
	RoleOffline                      // back-office operations
	RoleDropDevice                   // dropping devices
	RoleKeys                         // first-authentication keys
)

var roleNames = [...]string{
	RoleAdmin: "ADMIN", RoleRead: "READ", RoleReservations: "RESERVATIONS",
	RoleOffline: "OFFLINE", RoleDropDevice: "DROPDEVICE", RoleKeys: "KEYS",
}

func (r Role) valid() bool { return r >= RoleAdmin && int(r) < len(roleNames) }

func (r Role) String() string {
	if r.valid() {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// ParseRole reads a role's name: ADMIN, READ, RESERVATIONS, OFFLINE,
// DROPDEVICE or KEYS.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if name != "" && s == name {
			return Role(r), nil
		}
	}
	return 0, fmt.Errorf("%w: role %q (want one of %s)", ErrInvalidUser, s, strings.Join(roleNames[1:], ", "))
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("%w: role %d", ErrInvalidUser, uint8(r))
	}
	return []byte(roleNames[r]), nil
}

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	p, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// User is an administrator as an access decision sees it.
type User struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
}

// Has reports whether the user holds the right r: the role itself or ADMIN.
// READ is not implied by the other roles; a caller that lets every role
// see the views checks for that itself.
func (u User) Has(r Role) bool {
	for _, x := range u.Roles {
		if x == r || x == RoleAdmin {
			return true
		}
	}
	return false
}

// UserSummary is a row of the Users view. It never carries the password hash.
type UserSummary struct {
	User
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"passwordChanged"`
}

// Limits on administrators and their credentials.
const (
	MaxUserNameLen     = 64
	MaxPasswordHashLen = 512
	MaxUsers           = 10_000
	// TokenKeyLen is the length of the token-signing secret.
	TokenKeyLen = 32
)

// userRecord is an administrator as the state keeps it.
type userRecord struct {
	name            string
	roles           []Role
	hash            string
	created         time.Time
	passwordChanged time.Time
	// epoch grows at every logout; tokens name the epoch they were issued
	// in and are valid only while it is current.
	epoch uint64
}

func (u *userRecord) summary() UserSummary {
	return UserSummary{User: User{Name: u.name, Roles: slices.Clone(u.roles)}, Created: u.created, PasswordChanged: u.passwordChanged}
}

// CreateUser adds an administrator. PasswordHash is made outside apply (a
// PHC string from package password); the state keeps it opaque.
type CreateUser struct {
	Name         string `json:"name"`
	Roles        []Role `json:"roles"`
	PasswordHash string `json:"passwordHash"`
}

// SetUserRoles replaces an administrator's roles. Taking a role away ends
// the user's tokens, so that none carries a right the user lost.
type SetUserRoles struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
}

// SetPassword replaces an administrator's password hash; with Revoke, the
// tokens issued before end too.
type SetPassword struct {
	Name         string `json:"name"`
	PasswordHash string `json:"passwordHash"`
	Revoke       bool   `json:"revoke,omitempty"`
}

// DeleteUser removes an administrator.
type DeleteUser struct {
	Name string `json:"name"`
}

// Logout ends every token issued to an administrator so far.
type Logout struct {
	Name string `json:"name"`
}

// SetTokenKey installs the secret that signs administrators' tokens, so
// that a token issued by one node is valid on every node. Key is made
// outside apply (32 random bytes). Without Replace, a key already set is
// kept and the command changes nothing, so the first start of a cluster may
// propose one without asking first; with Replace, the new key ends every
// token issued before.
type SetTokenKey struct {
	Key     []byte `json:"key"`
	Replace bool   `json:"replace,omitempty"`
}

func (*CreateUser) Type() string   { return "createUser" }
func (*SetUserRoles) Type() string { return "setUserRoles" }
func (*SetPassword) Type() string  { return "setPassword" }
func (*DeleteUser) Type() string   { return "deleteUser" }
func (*Logout) Type() string       { return "logout" }
func (*SetTokenKey) Type() string  { return "setTokenKey" }

func (c *CreateUser) validate() error {
	if err := validateUserName(c.Name); err != nil {
		return err
	}
	roles, err := canonicalRoles(c.Roles)
	if err != nil {
		return err
	}
	c.Roles = roles
	return validatePasswordHash(c.PasswordHash)
}

func (c *SetUserRoles) validate() error {
	if err := validateUserName(c.Name); err != nil {
		return err
	}
	roles, err := canonicalRoles(c.Roles)
	if err != nil {
		return err
	}
	c.Roles = roles
	return nil
}

func (c *SetPassword) validate() error {
	if err := validateUserName(c.Name); err != nil {
		return err
	}
	return validatePasswordHash(c.PasswordHash)
}

func (c *DeleteUser) validate() error { return validateUserName(c.Name) }
func (c *Logout) validate() error     { return validateUserName(c.Name) }

func (c *SetTokenKey) validate() error {
	if len(c.Key) != TokenKeyLen {
		return fmt.Errorf("%w: token key of %d bytes, want %d", ErrInvalidCommand, len(c.Key), TokenKeyLen)
	}
	return nil
}

// validateUserName accepts 1..64 characters of A-Z, a-z, 0-9, '.', '_',
// '@' and '-'.
func validateUserName(name string) error {
	if name == "" || len(name) > MaxUserNameLen {
		return fmt.Errorf("%w: user name must have 1 to %d characters", ErrInvalidUser, MaxUserNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return fmt.Errorf("%w: user name %q may only hold letters, digits and . _ @ -", ErrInvalidUser, name)
		}
	}
	return nil
}

// validatePasswordHash checks only the form of a hash: the state never
// reads it.
func validatePasswordHash(hash string) error {
	if hash == "" || len(hash) > MaxPasswordHashLen {
		return fmt.Errorf("%w: password hash must have 1 to %d bytes", ErrInvalidUser, MaxPasswordHashLen)
	}
	for i := 0; i < len(hash); i++ {
		if c := hash[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: password hash holds a byte that is not printable", ErrInvalidUser)
		}
	}
	return nil
}

// canonicalRoles checks roles and returns them sorted without repeats. A
// user holds at least one role.
func canonicalRoles(roles []Role) ([]Role, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: a user needs at least one role", ErrInvalidUser)
	}
	if len(roles) > 64 {
		return nil, fmt.Errorf("%w: %d roles", ErrInvalidUser, len(roles))
	}
	out := slices.Clone(roles)
	for _, r := range out {
		if !r.valid() {
			return nil, fmt.Errorf("%w: role %d", ErrInvalidUser, uint8(r))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// admins counts the users who hold ADMIN.
func (s *State) admins() int {
	n := 0
	for _, u := range s.users {
		if slices.Contains(u.roles, RoleAdmin) {
			n++
		}
	}
	return n
}

func (s *State) user(name string) (*userRecord, error) {
	u := s.users[name]
	if u == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownUser, name)
	}
	return u, nil
}

// createUser adds a user. The first user must hold ADMIN, so that users,
// once there are any, always include an administrator.
func (s *State) createUser(c *CreateUser) error {
	if _, ok := s.users[c.Name]; ok {
		return fmt.Errorf("%w: %q", ErrUserExists, c.Name)
	}
	if len(s.users) >= MaxUsers {
		return fmt.Errorf("%w: the server holds %d users, its limit", ErrInvalidUser, len(s.users))
	}
	if len(s.users) == 0 && !slices.Contains(c.Roles, RoleAdmin) {
		return fmt.Errorf("%w: the first user must hold the ADMIN role", ErrInvalidUser)
	}
	s.users[c.Name] = &userRecord{name: c.Name, roles: slices.Clone(c.Roles), hash: c.PasswordHash, created: s.now, passwordChanged: s.now}
	return nil
}

func (s *State) setUserRoles(c *SetUserRoles) error {
	u, err := s.user(c.Name)
	if err != nil {
		return err
	}
	if slices.Equal(u.roles, c.Roles) {
		s.noChange = true
		return nil
	}
	if slices.Contains(u.roles, RoleAdmin) && !slices.Contains(c.Roles, RoleAdmin) && s.admins() == 1 {
		return fmt.Errorf("%w: %q is the last user with ADMIN", ErrLastAdmin, c.Name)
	}
	for _, r := range u.roles {
		if !slices.Contains(c.Roles, r) {
			u.epoch++
			break
		}
	}
	u.roles = slices.Clone(c.Roles)
	return nil
}

func (s *State) setPassword(c *SetPassword) error {
	u, err := s.user(c.Name)
	if err != nil {
		return err
	}
	u.hash, u.passwordChanged = c.PasswordHash, s.now
	if c.Revoke {
		u.epoch++
	}
	return nil
}

func (s *State) deleteUser(c *DeleteUser) error {
	u, err := s.user(c.Name)
	if err != nil {
		return err
	}
	if slices.Contains(u.roles, RoleAdmin) && s.admins() == 1 {
		return fmt.Errorf("%w: %q is the last user with ADMIN", ErrLastAdmin, c.Name)
	}
	delete(s.users, c.Name)
	return nil
}

func (s *State) logout(c *Logout) error {
	u, err := s.user(c.Name)
	if err != nil {
		return err
	}
	u.epoch++
	return nil
}

func (s *State) setTokenKey(c *SetTokenKey) {
	if len(s.tokenKey) > 0 && (!c.Replace || bytes.Equal(s.tokenKey, c.Key)) {
		s.noChange = true
		return
	}
	s.tokenKey = bytes.Clone(c.Key)
}

// Users lists the administrators by name, without their password hashes.
func (s *State) Users() []UserSummary {
	out := make([]UserSummary, 0, len(s.users))
	for _, name := range sortedKeys(s.users) {
		out = append(out, s.users[name].summary())
	}
	return out
}

// User returns one administrator, without the password hash.
func (s *State) User(name string) (UserSummary, error) {
	u, err := s.user(name)
	if err != nil {
		return UserSummary{}, err
	}
	return u.summary(), nil
}

// Credentials returns what a login checks and a token names: the user's
// password hash, roles and token epoch. A token issued at an epoch is valid
// only while the epoch is current.
func (s *State) Credentials(name string) (hash string, roles []Role, epoch uint64, err error) {
	u, err := s.user(name)
	if err != nil {
		return "", nil, 0, err
	}
	return u.hash, slices.Clone(u.roles), u.epoch, nil
}

// TokenKey returns a copy of the secret that signs administrators' tokens,
// or nil before one is set.
func (s *State) TokenKey() []byte { return bytes.Clone(s.tokenKey) }
