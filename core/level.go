package core

import "fmt"

// Level is the highest state level this code applies. A level names a
// change in what commands mean that every node of a cluster must agree on
// before any of them acts on it: during a rolling upgrade the older nodes
// would otherwise decode or apply the same log entries differently. The
// state starts at level 1 and is raised by RaiseLevel, which the leader
// proposes once every member says it runs a level at least as high.
//
//	1  the first.
//	2  device connections: each Hello (and each Onboard) numbers the
//	   device's connection, Result.Conn says the number, and a Checkout
//	   or Disconnect that names an earlier connection is refused
//	   (ErrSuperseded) or ignored, so that a request the device gave up
//	   on cannot apply after what the device asked on its next connection.
const Level = 2

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

// superseded reports whether conn names an earlier connection of d than
// its latest. Zero names none and is never superseded.
func superseded(d *device, conn uint64) bool {
	return conn != 0 && conn != d.conn
}
