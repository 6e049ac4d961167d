package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// Request is one command as the leader proposes it: who asked (for
// duplicate detection), when (the leader's clock; apply never reads one),
// and what.
type Request struct {
	ID      RequestID
	At      time.Time
	Command Command
}

// Command is a change to the state. Each type validates itself without the
// state; Apply then checks it against the state.
type Command interface {
	// Type names the command in the encoded form.
	Type() string
	// validate checks the command on its own and puts it in canonical form.
	validate() error
}

// Tick moves the clock so that due leases expire and lines start or end.
// The leader proposes one every second or so.
type Tick struct{}

// Hello records a device, or updates what it says about itself.
type Hello struct {
	Device DeviceInfo `json:"device"`
}

// Checkout sets the count a device holds of a feature: more is a checkout,
// the same a renewal, fewer a partial return and zero a return. Borrow is the
// lease length asked for; zero means licensing.borrowInterval.
type Checkout struct {
	Device  hostid.HostID   `json:"device"`
	Feature string          `json:"feature"`
	Version version.Version `json:"version"`
	Count   int64           `json:"count"`
	Borrow  time.Duration   `json:"borrow,omitempty"`
	// Conn is the device connection the request came on (Result.Conn of
	// its Hello); a checkout from an earlier connection than the device's
	// latest is refused with ErrSuperseded. Zero checks nothing.
	Conn uint64 `json:"conn,omitempty"`
}

// Disconnect says a device's connection closed. Conn is as in Checkout:
// the end of an earlier connection than the latest changes nothing.
type Disconnect struct {
	Device hostid.HostID `json:"device"`
	Conn   uint64        `json:"conn,omitempty"`
}

// DropDevice forgets a device and frees its counts.
type DropDevice struct {
	Device hostid.HostID `json:"device"`
}

// LoadRights installs the lines of a verified rights file or capability
// response, replacing the earlier lines of the same source. Locks are
// property values the producer fixes.
type LoadRights struct {
	Source   string            `json:"source"`
	Sequence uint64            `json:"sequence"`
	Lines    []FeatureLine     `json:"lines"`
	Locks    map[string]string `json:"locks,omitempty"`
}

// RemoveRights takes away the lines of a source.
type RemoveRights struct {
	Source string `json:"source"`
}

// SetModel installs a license model definition.
type SetModel struct {
	Text string `json:"text"`
}

// DeleteModel removes the license model; every device uses the default pool.
type DeleteModel struct{}

// SetReservations adds reservation groups, replacing those of the same name.
type SetReservations struct {
	Groups []ReservationGroup `json:"groups"`
}

// DeleteReservations removes reservation groups by name.
type DeleteReservations struct {
	Names []string `json:"names"`
}

// SetProperty changes a policy setting.
type SetProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (*Tick) Type() string               { return "tick" }
func (*Hello) Type() string              { return "hello" }
func (*Checkout) Type() string           { return "checkout" }
func (*Disconnect) Type() string         { return "disconnect" }
func (*DropDevice) Type() string         { return "dropDevice" }
func (*LoadRights) Type() string         { return "loadRights" }
func (*RemoveRights) Type() string       { return "removeRights" }
func (*SetModel) Type() string           { return "setModel" }
func (*DeleteModel) Type() string        { return "deleteModel" }
func (*SetReservations) Type() string    { return "setReservations" }
func (*DeleteReservations) Type() string { return "deleteReservations" }
func (*SetProperty) Type() string        { return "setProperty" }

// newCommand returns an empty command of the named type.
func newCommand(typ string) (Command, bool) {
	switch typ {
	case "tick":
		return &Tick{}, true
	case "hello":
		return &Hello{}, true
	case "checkout":
		return &Checkout{}, true
	case "disconnect":
		return &Disconnect{}, true
	case "dropDevice":
		return &DropDevice{}, true
	case "loadRights":
		return &LoadRights{}, true
	case "removeRights":
		return &RemoveRights{}, true
	case "setModel":
		return &SetModel{}, true
	case "deleteModel":
		return &DeleteModel{}, true
	case "setReservations":
		return &SetReservations{}, true
	case "deleteReservations":
		return &DeleteReservations{}, true
	case "setProperty":
		return &SetProperty{}, true
	case "audited":
		return &Audited{}, true
	case "createKeys":
		return &CreateKeys{}, true
	case "setKeyActive":
		return &SetKeyActive{}, true
	case "setKeyDescription":
		return &SetKeyDescription{}, true
	case "deleteKey":
		return &DeleteKey{}, true
	case "onboard":
		return &Onboard{}, true
	case "setMainLicensingId":
		return &SetMainLicensingID{}, true
	case "restoreBackup":
		return &RestoreBackup{}, true
	case "setClientKey":
		return &SetClientKey{}, true
	case "createUser":
		return &CreateUser{}, true
	case "setUserRoles":
		return &SetUserRoles{}, true
	case "setPassword":
		return &SetPassword{}, true
	case "deleteUser":
		return &DeleteUser{}, true
	case "logout":
		return &Logout{}, true
	case "setTokenKey":
		return &SetTokenKey{}, true
	case "setClusterCa":
		return &SetClusterCA{}, true
	case "createJoinToken":
		return &CreateJoinToken{}, true
	case "deleteJoinToken":
		return &DeleteJoinToken{}, true
	case "useJoinToken":
		return &UseJoinToken{}, true
	case "beginSync":
		return &BeginSync{}, true
	case "completeSync":
		return &CompleteSync{}, true
	case "memberChanged":
		return &MemberChanged{}, true
	case "raiseLevel":
		return &RaiseLevel{}, true
	}
	return nil, false
}

// maxModelText bounds a model definition.
const maxModelText = 1 << 20

func (*Tick) validate() error        { return nil }
func (*DeleteModel) validate() error { return nil }

func (c *Hello) validate() error { return c.Device.validate() }

func (c *Checkout) validate() error {
	if err := canonicalDevice(&c.Device); err != nil {
		return err
	}
	if err := validateFeatureName(c.Feature); err != nil {
		return err
	}
	if c.Version.IsZero() {
		return fmt.Errorf("%w: checkout of %q has no version", ErrInvalidCommand, c.Feature)
	}
	if c.Count < 0 || c.Count > MaxCount {
		return fmt.Errorf("%w: %d is outside 0..%d", ErrInvalidCount, c.Count, MaxCount)
	}
	if c.Borrow < 0 || c.Borrow > 3650*24*time.Hour {
		return fmt.Errorf("%w: borrow %s is outside 0..10 years", ErrInvalidCommand, c.Borrow)
	}
	return nil
}

func (c *Disconnect) validate() error { return canonicalDevice(&c.Device) }
func (c *DropDevice) validate() error { return canonicalDevice(&c.Device) }

func canonicalDevice(h *hostid.HostID) error {
	id, err := hostid.New(h.Value, h.Type)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
	}
	*h = id
	return nil
}

func (c *LoadRights) validate() error {
	if err := validateSourceName(c.Source); err != nil {
		return err
	}
	if c.Sequence == 0 {
		return fmt.Errorf("%w: rights from %q have sequence 0", ErrInvalidFeature, c.Source)
	}
	if len(c.Lines) > MaxLinesPerSet {
		return fmt.Errorf("%w: %d lines, at most %d", ErrInvalidFeature, len(c.Lines), MaxLinesPerSet)
	}
	ids := make(map[string]bool, len(c.Lines))
	for i := range c.Lines {
		l := &c.Lines[i]
		if l.Source != "" && l.Source != c.Source {
			return fmt.Errorf("%w: line %d names source %q inside rights from %q", ErrInvalidFeature, i+1, l.Source, c.Source)
		}
		l.Source = c.Source
		if l.ID == "" {
			l.ID = sourceLineID(c.Source, i+1)
		}
		l.Start, l.Expiry = l.Start.UTC(), l.Expiry.UTC()
		if err := l.validate(); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		if ids[l.ID] {
			return fmt.Errorf("%w: line id %q appears twice", ErrInvalidFeature, l.ID)
		}
		ids[l.ID] = true
	}
	locks, err := checkLocks(c.Locks)
	if err != nil {
		return err
	}
	c.Locks = locks
	return nil
}

func (c *RemoveRights) validate() error { return validateSourceName(c.Source) }

func validateSourceName(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: rights source has no name", ErrInvalidFeature)
	}
	return validateLabel("rights source", s, 128)
}

func (c *SetModel) validate() error {
	if len(c.Text) > maxModelText {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidModel, len(c.Text), maxModelText)
	}
	return nil
}

func (c *SetReservations) validate() error {
	if len(c.Groups) == 0 {
		return fmt.Errorf("%w: no groups", ErrInvalidReserve)
	}
	return validateReservations(c.Groups)
}

func (c *DeleteReservations) validate() error {
	if len(c.Names) == 0 {
		return fmt.Errorf("%w: no group names", ErrInvalidReserve)
	}
	return nil
}

func (c *SetProperty) validate() error {
	d, ok := lookupProperty(c.Name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownProperty, c.Name)
	}
	v, err := d.normalize(c.Value)
	if err != nil {
		return err
	}
	c.Value = v
	return nil
}
