package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// The cluster's replicated trust: the CA that admits nodes and the join
// tokens administrators make for them. They belong to the cluster rather
// than to the licensing data, so a database restore leaves them as they are.

// Limits on the cluster CA and join tokens.
const (
	MaxClusterCALen            = 8 << 10
	MaxJoinTokenIDLen          = 64
	JoinTokenVerifierLen       = 32
	MaxJoinTokenDescriptionLen = 256
	MaxJoinTokenLifetime       = 7 * 24 * time.Hour
	MaxJoinTokens              = 1000
	MaxNodeIDLen               = 64
)

// SetClusterCA installs the cluster CA: its certificate and private key in
// PEM, which package raft/clustertls makes and parses; core checks their
// sizes only. The node that bootstraps the cluster proposes it. The first
// CA set stays: the same bytes again change nothing, other bytes are
// refused (ErrClusterCAExists), since every node certificate hangs on it.
type SetClusterCA struct {
	CertPEM []byte `json:"certPem"`
	KeyPEM  []byte `json:"keyPem"`
}

// CreateJoinToken adds a join token. ID and Verifier are made outside
// apply (package raft/clustertls); the token's secret never reaches the
// state. Expires must be after the request's time and at most
// MaxJoinTokenLifetime after it.
type CreateJoinToken struct {
	ID          string    `json:"id"`
	Verifier    []byte    `json:"verifier"`
	Expires     time.Time `json:"expires"`
	Description string    `json:"description,omitempty"`
}

// DeleteJoinToken removes a join token, used or not.
type DeleteJoinToken struct {
	ID string `json:"id"`
}

// UseJoinToken records that a token admitted a node. The member admitting
// a joiner applies it after checking the joiner's proof against the
// token's verifier, and issues a certificate only when it succeeds. The
// decision is taken in apply, so of two nodes racing on two members with
// one token exactly one is admitted. The node that used a token may repeat
// its use (a retried join) until the token expires; nothing changes.
type UseJoinToken struct {
	ID   string `json:"id"`
	Node string `json:"node"`
}

func (*SetClusterCA) Type() string    { return "setClusterCa" }
func (*CreateJoinToken) Type() string { return "createJoinToken" }
func (*DeleteJoinToken) Type() string { return "deleteJoinToken" }
func (*UseJoinToken) Type() string    { return "useJoinToken" }

func (c *SetClusterCA) validate() error { return validateClusterCA(c.CertPEM, c.KeyPEM) }

func validateClusterCA(certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 || len(certPEM) > MaxClusterCALen {
		return fmt.Errorf("%w: certificate of %d bytes, want 1 to %d", ErrInvalidClusterCA, len(certPEM), MaxClusterCALen)
	}
	if len(keyPEM) == 0 || len(keyPEM) > MaxClusterCALen {
		return fmt.Errorf("%w: key of %d bytes, want 1 to %d", ErrInvalidClusterCA, len(keyPEM), MaxClusterCALen)
	}
	return nil
}

func (c *CreateJoinToken) validate() error {
	if err := validateJoinTokenID(c.ID); err != nil {
		return err
	}
	if len(c.Verifier) != JoinTokenVerifierLen {
		return fmt.Errorf("%w: verifier of %d bytes, want %d", ErrInvalidJoinToken, len(c.Verifier), JoinTokenVerifierLen)
	}
	if c.Expires.IsZero() {
		return fmt.Errorf("%w: join token %s does not expire", ErrInvalidJoinToken, c.ID)
	}
	c.Expires = c.Expires.UTC()
	if err := validateLabel("join token description", c.Description, MaxJoinTokenDescriptionLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJoinToken, err)
	}
	return nil
}

func (c *DeleteJoinToken) validate() error { return validateJoinTokenID(c.ID) }

func (c *UseJoinToken) validate() error {
	if err := validateJoinTokenID(c.ID); err != nil {
		return err
	}
	return validateNodeID(c.Node)
}

// validateJoinTokenID accepts 1..64 characters of a-z and 0-9.
func validateJoinTokenID(id string) error {
	if !onlyBytes(id, MaxJoinTokenIDLen, isLowerAlnum) {
		return fmt.Errorf("%w: id %q is not 1 to %d characters of a-z and 0-9", ErrInvalidJoinToken, id, MaxJoinTokenIDLen)
	}
	return nil
}

// validateNodeID accepts 1..64 characters of A-Z, a-z, 0-9, '.', '_' and
// '-', as package raft/clustertls does.
func validateNodeID(node string) error {
	if !onlyBytes(node, MaxNodeIDLen, isNodeIDByte) {
		return fmt.Errorf("%w: node %q is not 1 to %d characters of letters, digits and . _ -", ErrInvalidJoinToken, node, MaxNodeIDLen)
	}
	return nil
}

// onlyBytes reports whether s has 1 to max bytes, each accepted by ok.
func onlyBytes(s string, max int, ok func(byte) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isNodeIDByte(c byte) bool {
	return isLowerAlnum(c) || 'A' <= c && c <= 'Z' || c == '.' || c == '_' || c == '-'
}

// clusterCA is the cluster CA as the state and its snapshot keep it.
type clusterCA struct {
	CertPEM []byte `json:"certPem"`
	KeyPEM  []byte `json:"keyPem"`
}

// joinToken is a join token as the state and its snapshot keep it,
// verifier included. UsedBy and UsedAt name the node it admitted; a token
// admits one node, ever.
type joinToken struct {
	ID          string    `json:"id"`
	Verifier    []byte    `json:"verifier"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	UsedBy      string    `json:"usedBy,omitempty"`
	UsedAt      time.Time `json:"usedAt,omitzero"`
}

// JoinTokenSummary is a row of the JoinTokens view. It never carries the
// verifier. Expired says that the token, unused, can no longer admit a
// node; expired tokens stay until an administrator deletes them.
type JoinTokenSummary struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	UsedBy      string    `json:"usedBy,omitempty"`
	UsedAt      time.Time `json:"usedAt,omitzero"`
	Expired     bool      `json:"expired,omitempty"`
}

func (s *State) setClusterCA(c *SetClusterCA) error {
	if s.clusterCA != nil {
		if bytes.Equal(s.clusterCA.CertPEM, c.CertPEM) && bytes.Equal(s.clusterCA.KeyPEM, c.KeyPEM) {
			s.noChange = true
			return nil
		}
		return fmt.Errorf("%w: certificate SHA-256 %s", ErrClusterCAExists, sha256Hex(s.clusterCA.CertPEM))
	}
	s.clusterCA = &clusterCA{CertPEM: bytes.Clone(c.CertPEM), KeyPEM: bytes.Clone(c.KeyPEM)}
	return nil
}

func (s *State) joinToken(id string) (*joinToken, error) {
	t := s.joinTokens[id]
	if t == nil {
		return nil, fmt.Errorf("%w %s", ErrUnknownJoinToken, id)
	}
	return t, nil
}

func (s *State) createJoinToken(c *CreateJoinToken) error {
	if _, ok := s.joinTokens[c.ID]; ok {
		return fmt.Errorf("%w: %s", ErrJoinTokenExists, c.ID)
	}
	if len(s.joinTokens) >= MaxJoinTokens {
		return fmt.Errorf("%w: the cluster holds %d join tokens, at most %d", ErrInvalidJoinToken, len(s.joinTokens), MaxJoinTokens)
	}
	if !c.Expires.After(s.now) || c.Expires.Sub(s.now) > MaxJoinTokenLifetime {
		return fmt.Errorf("%w: join token %s expires at %s, want after %s and within %s", ErrInvalidJoinToken,
			c.ID, c.Expires.Format(time.RFC3339), s.now.Format(time.RFC3339), MaxJoinTokenLifetime)
	}
	s.joinTokens[c.ID] = &joinToken{ID: c.ID, Verifier: bytes.Clone(c.Verifier), Description: c.Description,
		Created: s.now, Expires: c.Expires}
	return nil
}

func (s *State) deleteJoinToken(c *DeleteJoinToken) error {
	t, err := s.joinToken(c.ID)
	if err != nil {
		return err
	}
	delete(s.joinTokens, t.ID)
	return nil
}

// useJoinToken records the node a token admits and writes an audit record
// by "node:" and the node's ID. An expired token admits nobody, not even
// the node it admitted before.
func (s *State) useJoinToken(c *UseJoinToken) error {
	t, err := s.joinToken(c.ID)
	if err != nil {
		return err
	}
	if !s.now.Before(t.Expires) {
		return fmt.Errorf("%w: %s expired at %s", ErrJoinTokenExpired, t.ID, t.Expires.Format(time.RFC3339))
	}
	switch t.UsedBy {
	case c.Node:
		s.noChange = true
		return nil
	case "":
	default:
		return fmt.Errorf("%w: %s admitted node %s", ErrJoinTokenUsed, t.ID, t.UsedBy)
	}
	t.UsedBy, t.UsedAt = c.Node, s.now
	s.appendAudit("node:"+c.Node, "", c.Type(), fmt.Sprintf("node %s joined with join token %s", c.Node, t.ID))
	return nil
}

// ClusterCA returns copies of the cluster CA's certificate and key, and
// whether one is set.
func (s *State) ClusterCA() (certPEM, keyPEM []byte, ok bool) {
	if s.clusterCA == nil {
		return nil, nil, false
	}
	return bytes.Clone(s.clusterCA.CertPEM), bytes.Clone(s.clusterCA.KeyPEM), true
}

// JoinTokens lists the join tokens, oldest first (by ID among tokens made
// at the same time).
func (s *State) JoinTokens() []JoinTokenSummary {
	out := make([]JoinTokenSummary, 0, len(s.joinTokens))
	for _, id := range sortedKeys(s.joinTokens) {
		t := s.joinTokens[id]
		out = append(out, JoinTokenSummary{ID: t.ID, Description: t.Description, Created: t.Created, Expires: t.Expires,
			UsedBy: t.UsedBy, UsedAt: t.UsedAt, Expired: t.UsedBy == "" && !s.now.Before(t.Expires)})
	}
	slices.SortStableFunc(out, func(a, b JoinTokenSummary) int { return a.Created.Compare(b.Created) })
	return out
}

// JoinTokenVerifier returns a copy of a token's verifier, for the member
// admitting a joiner to check the joiner's proof; whether the token may
// still admit that node is decided by UseJoinToken.
func (s *State) JoinTokenVerifier(id string) ([]byte, bool) {
	t := s.joinTokens[id]
	if t == nil {
		return nil, false
	}
	return bytes.Clone(t.Verifier), true
}

// clusterDetail says what a cluster command changed, for the audit log.
// It shows neither the CA key nor a verifier.
func clusterDetail(c Command) (string, bool) {
	switch c := c.(type) {
	case *SetClusterCA:
		return "set the cluster CA (certificate SHA-256 " + sha256Hex(c.CertPEM) + ")", true
	case *CreateJoinToken:
		return fmt.Sprintf("created join token %s expiring %s", c.ID, c.Expires.Format(time.RFC3339)), true
	case *DeleteJoinToken:
		return "deleted join token " + c.ID, true
	}
	return "", false
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// snapshotCluster writes the cluster CA and the join tokens, by ID.
func (s *State) snapshotCluster(snap *snapshot) {
	snap.ClusterCA = s.clusterCA
	for _, id := range sortedKeys(s.joinTokens) {
		snap.JoinTokens = append(snap.JoinTokens, *s.joinTokens[id])
	}
}

// restoreCluster checks and installs the cluster CA and the join tokens.
func (s *State) restoreCluster(snap *snapshot) error {
	if ca := snap.ClusterCA; ca != nil {
		if err := validateClusterCA(ca.CertPEM, ca.KeyPEM); err != nil {
			return err
		}
		s.clusterCA = ca
	}
	if len(snap.JoinTokens) > MaxJoinTokens {
		return fmt.Errorf("%d join tokens, limit %d", len(snap.JoinTokens), MaxJoinTokens)
	}
	for _, t := range snap.JoinTokens {
		if err := s.restoreJoinToken(t); err != nil {
			return err
		}
	}
	return nil
}

// restoreJoinToken checks a token as CreateJoinToken and UseJoinToken
// would have left it, and installs it.
func (s *State) restoreJoinToken(t joinToken) error {
	c := CreateJoinToken{ID: t.ID, Verifier: t.Verifier, Expires: t.Expires, Description: t.Description}
	if err := c.validate(); err != nil {
		return err
	}
	if s.joinTokens[t.ID] != nil {
		return fmt.Errorf("join token %s appears twice", t.ID)
	}
	t.Created, t.Expires, t.UsedAt = t.Created.UTC(), c.Expires, t.UsedAt.UTC()
	if t.Created.IsZero() || t.Created.After(s.now) || !t.Expires.After(t.Created) || t.Expires.Sub(t.Created) > MaxJoinTokenLifetime {
		return fmt.Errorf("join token %s was created at %s to expire at %s", t.ID, t.Created, t.Expires)
	}
	if (t.UsedBy == "") != t.UsedAt.IsZero() {
		return fmt.Errorf("join token %s has a user without a time of use, or the reverse", t.ID)
	}
	if t.UsedBy != "" {
		if err := validateNodeID(t.UsedBy); err != nil {
			return err
		}
		if t.UsedAt.Before(t.Created) || !t.UsedAt.Before(t.Expires) || t.UsedAt.After(s.now) {
			return fmt.Errorf("join token %s was used at %s, outside its life", t.ID, t.UsedAt)
		}
	}
	s.joinTokens[t.ID] = &t
	return nil
}
