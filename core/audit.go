package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/core/strictjson"
)

// Actor is who asked for an administrative change and from where.
type Actor struct {
	User    string `json:"user"`
	Address string `json:"address,omitempty"`
}

// Audited is an administrative command with the actor that asked for it.
// Applying it applies Command; when that succeeds and changes something, an
// AuditRecord is appended to the audit log. It wraps neither itself nor the
// device commands (Tick, Hello, Checkout, Disconnect, Onboard) nor
// UseJoinToken: onboarding and joining write their own records.
type Audited struct {
	Actor   Actor
	Command Command
}

func (*Audited) Type() string { return "audited" }

// Limits on audit records.
const (
	maxActorLen       = 128
	maxAuditDetailLen = 512
)

func (c *Audited) validate() error {
	if err := validateLabel("actor", c.Actor.User, maxActorLen); err != nil {
		return err
	}
	if err := validateLabel("actor address", c.Actor.Address, maxActorLen); err != nil {
		return err
	}
	switch c.Command.(type) {
	case nil:
		return fmt.Errorf("%w: audited without a command", ErrInvalidCommand)
	case *Audited, *Tick, *Hello, *Checkout, *Disconnect, *Onboard, *UseJoinToken, *RaiseLevel:
		return fmt.Errorf("%w: %s cannot be audited", ErrInvalidCommand, c.Command.Type())
	}
	return c.Command.validate()
}

// wireAudited is the encoded form of Audited: the inner command's type
// beside its body, as in a request.
type wireAudited struct {
	Actor   Actor           `json:"actor"`
	Type    string          `json:"type"`
	Command json.RawMessage `json:"command,omitempty"`
}

// MarshalJSON writes the actor and the inner command with its type.
func (c Audited) MarshalJSON() ([]byte, error) {
	if c.Command == nil {
		return nil, fmt.Errorf("%w: audited without a command", ErrInvalidCommand)
	}
	body, err := json.Marshal(c.Command)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireAudited{Actor: c.Actor, Type: c.Command.Type(), Command: body})
}

// UnmarshalJSON reads what MarshalJSON writes; unknown fields and an
// Audited inside an Audited are refused.
func (c *Audited) UnmarshalJSON(data []byte) error {
	var w wireAudited
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return err
	}
	if w.Type == (*Audited)(nil).Type() {
		return fmt.Errorf("%w: audited inside audited", ErrInvalidCommand)
	}
	inner, ok := newCommand(w.Type)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownCommand, w.Type)
	}
	if len(w.Command) > 0 && string(w.Command) != "null" {
		if err := strictjson.Unmarshal(w.Command, inner); err != nil {
			return fmt.Errorf("%s: %w", w.Type, err)
		}
	}
	c.Actor, c.Command = w.Actor, inner
	return nil
}

// AuditRecord is one entry of the audit log. Hash is the hex SHA-256 over
// Prev (the hash of the record before) and the record's other fields, so
// that changing, removing or reordering a record breaks the chain.
type AuditRecord struct {
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	User    string    `json:"user"`
	Address string    `json:"address,omitempty"`
	Action  string    `json:"action"`
	Detail  string    `json:"detail"`
	Prev    string    `json:"prev"`
	Hash    string    `json:"hash"`
}

// digest computes the record's hash: SHA-256 over a version tag, Prev, and
// the fields in a fixed order, each string prefixed by its length.
func (r *AuditRecord) digest() string {
	h := sha256.New()
	h.Write([]byte("tally audit v1\x00"))
	writeAuditString(h, r.Prev)
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], r.Seq)
	binary.BigEndian.PutUint64(n[8:], uint64(r.At.UnixNano()))
	h.Write(n[:])
	for _, s := range []string{r.User, r.Address, r.Action, r.Detail} {
		writeAuditString(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeAuditString(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// audited applies the inner command and records it when it changed
// something.
func (s *State) audited(c *Audited) (Result, error) {
	res, err := s.dispatch(c.Command)
	if err != nil {
		return res, err
	}
	if !s.noChange {
		s.appendAudit(c.Actor.User, c.Actor.Address, c.Command.Type(), auditDetail(c.Command))
	}
	return res, nil
}

// appendAudit adds a record at the end of the chain. When the log holds
// more than Config.MaxAuditRecords, the oldest tenth is dropped; the first
// record kept then anchors the chain with its Prev.
func (s *State) appendAudit(user, address, action, detail string) {
	rec := AuditRecord{Seq: 1, At: s.now, User: user, Address: address, Action: action, Detail: truncateText(detail, maxAuditDetailLen)}
	if n := len(s.audit); n > 0 {
		rec.Seq, rec.Prev = s.audit[n-1].Seq+1, s.audit[n-1].Hash
	}
	rec.Hash = rec.digest()
	s.audit = append(s.audit, rec)
	if len(s.audit) > s.cfg.MaxAuditRecords {
		drop := max(1, s.cfg.MaxAuditRecords/10)
		s.audit = append(s.audit[:0:0], s.audit[drop:]...)
	}
}

// verifyAuditChain recomputes every hash and link of a run of records.
func verifyAuditChain(records []AuditRecord) error {
	for i := range records {
		r := &records[i]
		switch {
		case i == 0 && r.Seq == 1 && r.Prev != "":
			return fmt.Errorf("%w: record 1 has a predecessor", ErrAuditTampered)
		case i == 0 && r.Seq == 0:
			return fmt.Errorf("%w: record 0", ErrAuditTampered)
		case i > 0 && r.Seq != records[i-1].Seq+1:
			return fmt.Errorf("%w: record %d follows record %d", ErrAuditTampered, r.Seq, records[i-1].Seq)
		case i > 0 && r.Prev != records[i-1].Hash:
			return fmt.Errorf("%w: record %d does not link to record %d", ErrAuditTampered, r.Seq, records[i-1].Seq)
		}
		if r.digest() != r.Hash {
			return fmt.Errorf("%w: record %d does not match its hash", ErrAuditTampered, r.Seq)
		}
	}
	return nil
}

// Audit returns up to limit records with a sequence number above after,
// oldest first; a limit of zero or less returns all of them.
func (s *State) Audit(after uint64, limit int) []AuditRecord {
	i := sort.Search(len(s.audit), func(i int) bool { return s.audit[i].Seq > after })
	rest := s.audit[i:]
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	return append([]AuditRecord{}, rest...)
}

// AuditCount is the number of records the audit log holds.
func (s *State) AuditCount() int { return len(s.audit) }

// VerifyAudit recomputes the audit chain and returns an error wrapping
// ErrAuditTampered if any record was changed, removed or reordered.
func (s *State) VerifyAudit() error { return verifyAuditChain(s.audit) }

// truncateText cuts s to at most n bytes on a character boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// auditDetail says in a few words what an administrative command changed.
// It never shows a password hash or a secret.
func auditDetail(c Command) string {
	switch c := c.(type) {
	case *DropDevice:
		return "dropped device " + c.Device.String()
	case *LoadRights:
		return fmt.Sprintf("loaded %d lines from rights source %q (sequence %d)", len(c.Lines), c.Source, c.Sequence)
	case *RemoveRights:
		return fmt.Sprintf("removed rights source %q", c.Source)
	case *SetModel:
		return fmt.Sprintf("set the license model (%d bytes)", len(c.Text))
	case *DeleteModel:
		return "deleted the license model"
	case *SetReservations:
		names := make([]string, len(c.Groups))
		for i, g := range c.Groups {
			names[i] = g.Name
		}
		return "set reservation groups " + quotedList(names)
	case *DeleteReservations:
		return "deleted reservation groups " + quotedList(c.Names)
	case *SetProperty:
		return fmt.Sprintf("set %s to %q", c.Name, c.Value)
	case *CreateUser:
		return fmt.Sprintf("created user %s with roles %s", c.Name, roleList(c.Roles))
	case *SetUserRoles:
		return fmt.Sprintf("set the roles of %s to %s", c.Name, roleList(c.Roles))
	case *SetPassword:
		if c.Revoke {
			return "changed the password of " + c.Name + " and ended its tokens"
		}
		return "changed the password of " + c.Name
	case *DeleteUser:
		return "deleted user " + c.Name
	case *Logout:
		return "logged out " + c.Name
	case *SetTokenKey:
		return "set the token key"
	case *SetMainLicensingID:
		return fmt.Sprintf("set the main licensing ID (fingerprint %s, from node %q)", c.ID.fingerprint(), c.ID.Node)
	case *RestoreBackup:
		return fmt.Sprintf("restored a database backup (%d bytes)", len(c.Snapshot))
	case *MemberChanged:
		return memberChangeDetail(c)
	}
	if d, ok := keysDetail(c); ok {
		return d
	}
	if d, ok := clusterDetail(c); ok {
		return d
	}
	if d, ok := syncDetail(c); ok {
		return d
	}
	return c.Type()
}

func roleList(roles []Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.String()
	}
	return strings.Join(names, ",")
}

// quotedList joins quoted names with ", ", stopping once the text is longer
// than an audit detail may be.
func quotedList(names []string) string {
	var b strings.Builder
	for _, n := range names {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
		if b.Len() > maxAuditDetailLen {
			break
		}
	}
	return b.String()
}
