package core

import (
	"fmt"
	"slices"

	"github.com/tallyhq/tally/core/version"
)

// Level is the highest state level this code applies. A level names a
// change in what commands mean that every node of a cluster must agree on
// before any of them acts on it: during a rolling upgrade the older nodes
// would otherwise decode or apply the same log entries differently. The
// state starts at level 1 and is raised by RaiseLevel, which the leader
// proposes once every member says it runs a level at least as high.
//
//	1  the first.
//	2  device connections: each Hello (and each Onboard) numbers the
//	   device's connection (Result.Conn), and a Checkout names its
//	   connection. A feature's latest asker is the highest-numbered
//	   connection that asked for it (by name, whatever the version; kept
//	   for the names the rights hold); a Checkout from an earlier connection
//	   is refused with ErrSuperseded, so a request the device gave up on
//	   cannot land after what it asked on its next connection. The end of
//	   a connection (Disconnect with its number) frees only the leases no
//	   later connection asked for. Connections asking for different
//	   features (two programs on one device) do not disturb each other.
//	3  membership changes in the audit log: MemberChanged records a member
//	   removed (by an administrator or as a dead server), a voter added
//	   and a member's new address.
const Level = 3

// RaiseLevel raises the state level; a level at or below the current one
// changes nothing.
type RaiseLevel struct {
	Level int `json:"level"`
}

func (*RaiseLevel) Type() string { return "raiseLevel" }

func (c *RaiseLevel) validate() error {
	if c.Level < 1 || c.Level > Level {
		return fmt.Errorf("%w: level %d; this server applies 1 to %d", ErrInvalidLevel, c.Level, Level)
	}
	return nil
}

// Level returns the state level in force.
func (s *State) Level() int { return max(s.level, 1) }

func (s *State) raiseLevel(c *RaiseLevel) (Result, error) {
	if c.Level <= s.Level() {
		s.noChange = true
		return Result{}, nil
	}
	s.appendAudit("cluster", "", c.Type(), fmt.Sprintf("raised the state level from %d to %d", s.Level(), c.Level))
	s.level = c.Level
	return Result{}, nil
}

// connect numbers a new connection of d at level 2 and above, and returns
// its number; 0 below level 2.
func (s *State) connect(d *device) uint64 {
	if s.Level() < 2 {
		return 0
	}
	d.conn++
	return d.conn
}

// supersedes refuses a checkout from an earlier connection than the
// latest that asked for its feature, or from a connection the device was
// never given. Conn 0 names none and is never refused.
func (d *device) supersedes(c *Checkout) error {
	if c.Conn == 0 {
		return nil
	}
	if c.Conn > d.conn {
		return fmt.Errorf("%w: connection %d of %s is not one the server numbered (the latest is %d)",
			ErrSuperseded, c.Conn, c.Device, d.conn)
	}
	if by := d.askedBy(c.Feature); c.Conn < by {
		return fmt.Errorf("%w: %s asked for %s on connection %d since connection %d, which this request came on",
			ErrSuperseded, c.Device, c.Feature, by, c.Conn)
	}
	return nil
}

// asked records which connection of a device last asked for a feature
// (by name, whatever the version).
type asked struct {
	feature string
	conn    uint64
}

// askedBy returns the connection that last asked for the feature; 0 for
// none.
func (d *device) askedBy(feature string) uint64 {
	for _, a := range d.asked {
		if a.feature == feature {
			return a.conn
		}
	}
	return 0
}

// setAsked records that connection conn asked for the feature. It keeps
// the record for the features the rights name, or the device holds or has
// asked for, not for every name a device may send, so that the record is
// bounded by the rights.
func (s *State) setAsked(d *device, feature string, v version.Version, conn uint64) {
	for i := range d.asked {
		if a := &d.asked[i]; a.feature == feature {
			a.conn = max(a.conn, conn)
			return
		}
	}
	if s.families[feature] == nil && d.findLease(feature, v) == nil {
		return
	}
	d.asked = append(d.asked, asked{feature: feature, conn: conn})
}

// endLeasesOf ends the leases of d that no connection after conn asked
// for, when connection conn ends.
func (s *State) endLeasesOf(d *device, conn uint64) []Lease {
	var freed []Lease
	for _, l := range slices.Clone(d.leases) {
		if d.askedBy(l.feature) > conn {
			continue
		}
		info := l.info()
		info.Count = 0
		freed = append(freed, info)
		s.endLease(l)
	}
	return freed
}
