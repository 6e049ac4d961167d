package core

import "fmt"

// MemberChanged records a change of the cluster's membership in the audit
// log: a member removed by an administrator or as a dead server, a voter
// added, a member's address changed. The change itself is raft's (its
// configuration is not part of this state); the command changes nothing
// but the audit log, and is applied wrapped in Audited, whose actor says
// who asked ("cluster" for what the cluster did on its own). It is
// proposed from state level 3 on and refused below.
type MemberChanged struct {
	Change  string `json:"change"`
	Node    string `json:"node"`
	Address string `json:"address,omitempty"`
	// Reason says why, for a change the cluster made on its own.
	Reason string `json:"reason,omitempty"`
}

// Membership changes.
const (
	MemberAdded     = "added"
	MemberRemoved   = "removed"
	MemberReaddress = "address"
)

// MemberChangeLevel is the state level from which membership changes are
// recorded.
const MemberChangeLevel = 3

const maxMemberReasonLen = 256

func (*MemberChanged) Type() string { return "memberChanged" }

func (c *MemberChanged) validate() error {
	switch c.Change {
	case MemberAdded, MemberRemoved, MemberReaddress:
	default:
		return fmt.Errorf("%w: membership change %q is not %s, %s or %s", ErrInvalidCommand, c.Change, MemberAdded, MemberRemoved, MemberReaddress)
	}
	if !onlyBytes(c.Node, MaxNodeIDLen, isNodeIDByte) {
		return fmt.Errorf("%w: node %q is not 1 to %d characters of letters, digits and . _ -", ErrInvalidCommand, c.Node, MaxNodeIDLen)
	}
	if c.Change != MemberRemoved && c.Address == "" {
		return fmt.Errorf("%w: a member %s needs its address", ErrInvalidCommand, c.Change)
	}
	if err := validateLabel("member address", c.Address, maxActorLen); err != nil {
		return err
	}
	return validateLabel("reason", c.Reason, maxMemberReasonLen)
}

func (s *State) memberChanged(c *MemberChanged) error {
	if s.Level() < MemberChangeLevel {
		return fmt.Errorf("%w: membership changes are recorded from state level %d; the state is at %d", ErrInvalidLevel, MemberChangeLevel, s.Level())
	}
	return nil
}

// memberChangeDetail is the audit record's text of c.
func memberChangeDetail(c *MemberChanged) string {
	var d string
	switch c.Change {
	case MemberAdded:
		d = fmt.Sprintf("added node %s as a voter at %s", c.Node, c.Address)
	case MemberRemoved:
		d = "removed node " + c.Node + " from the cluster"
		if c.Address != "" {
			d += " (it was at " + c.Address + ")"
		}
	default:
		d = fmt.Sprintf("node %s is now at %s", c.Node, c.Address)
	}
	if c.Reason != "" {
		d += ": " + c.Reason
	}
	return d
}
