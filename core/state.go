package core

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/version"
)

// Config tunes the engine. The zero Config is usable.
type Config struct {
	// SessionTTL is how long a request session is remembered after its last
	// command; a retry after that is applied again. Default 1 hour.
	SessionTTL time.Duration
	// MaxDevices bounds the devices the state holds. Default 1,000,000.
	MaxDevices int
	// MaxSessions bounds the remembered sessions. Default 1,000,000.
	MaxSessions int
	// MaxAuditRecords bounds the audit log; past it the oldest tenth is
	// dropped. Default 1,000,000.
	MaxAuditRecords int
}

func (c Config) withDefaults() Config {
	if c.SessionTTL <= 0 {
		c.SessionTTL = time.Hour
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = 1_000_000
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 1_000_000
	}
	if c.MaxAuditRecords <= 0 {
		c.MaxAuditRecords = 1_000_000
	}
	return c
}

// State is the licensing state machine. It is not safe for concurrent use:
// the replication layer applies commands from one goroutine and guards reads
// with its own lock.
type State struct {
	cfg Config
	now time.Time // the latest command time applied; never goes back
	seq uint64    // lease grant counter

	sources  map[string]*rightsSource
	lines    map[string]*line
	families map[string]*family
	// nextLineEvent is when a line next starts or expires; zero for never.
	nextLineEvent time.Time

	devices map[hostid.HostID]*device
	expiry  leaseHeap

	modelText    string
	model        *model.Model
	reservations []ReservationGroup // sorted by name
	// poolNames[i] names pool i: "default", the model's pools, or one pool
	// per reserved hostid.
	poolNames     []string
	reservedPools map[hostid.HostID]int
	reserveStatus map[reserveKey]bool

	props  properties
	policy policy

	// spare holds ended leases for reuse, sparing the allocator on the
	// checkout path.
	spare []*lease

	sessions     map[SessionID]*session
	nextSweep    time.Time
	sessionOrder []SessionID // scratch for sweeps

	users    map[string]*userRecord
	tokenKey []byte
	mainID   *MainLicensingID
	audit    []AuditRecord // the audit log, oldest first

	keys        map[string]*firstAuthKey // by ID
	keyBySecret map[string]*firstAuthKey
	clientKey   []byte

	clusterCA  *clusterCA
	joinTokens map[string]*joinToken // by ID

	sync syncState // the exchange with the back office

	// level is the state level in force (see Level); 0 reads as 1.
	level int

	// noChange is set by a command that succeeded without changing
	// anything, so that Audited records nothing for it.
	noChange bool
}

// rightsSource is the set of lines loaded from one activation or rights file.
type rightsSource struct {
	Name     string            `json:"name"`
	Sequence uint64            `json:"sequence"`
	LineIDs  []string          `json:"lineIds"`
	Locks    map[string]string `json:"locks,omitempty"`
}

// New returns an empty state.
func New(cfg Config) *State {
	s := &State{
		cfg:           cfg.withDefaults(),
		sources:       map[string]*rightsSource{},
		lines:         map[string]*line{},
		families:      map[string]*family{},
		devices:       map[hostid.HostID]*device{},
		poolNames:     []string{"default"},
		reservedPools: map[hostid.HostID]int{},
		reserveStatus: map[reserveKey]bool{},
		props:         properties{values: map[string]string{}, locks: map[string]map[string]string{}},
		sessions:      map[SessionID]*session{},
		users:         map[string]*userRecord{},
		keys:          map[string]*firstAuthKey{},
		keyBySecret:   map[string]*firstAuthKey{},
		joinTokens:    map[string]*joinToken{},
	}
	s.policy = s.props.policy()
	return s
}

// Now returns the time of the latest command applied.
func (s *State) Now() time.Time { return s.now }

// Result is what applying a command produced. A denial is a result, not an
// error: the command was applied and the device is told why.
type Result struct {
	// Duplicate is set when the request was applied before; nothing changed.
	Duplicate bool `json:"duplicate,omitempty"`
	// Grant is the device's lease after a checkout, renew or return.
	Grant Grant `json:"grant,omitzero"`
	// Denied says why a checkout could not be granted; the lease is as before.
	Denied DenialReason `json:"denied,omitempty"`
	// Changed lists other leases this command revoked or freed, for pushes.
	Changed []Lease `json:"changed,omitempty"`
	// Onboarded is the device an Onboard recorded.
	Onboarded hostid.HostID `json:"onboarded,omitzero"`
	// Conn numbers the device connection a Hello or Onboard opened, from
	// level 2 on (see Level); the connection names it in its Checkout and
	// Disconnect commands.
	Conn uint64 `json:"conn,omitempty"`
}

// Grant is a device's lease on a feature as a checkout left it.
type Grant struct {
	Device    hostid.HostID `json:"device"`
	Feature   string        `json:"feature"`
	Version   string        `json:"version"`
	Count     int64         `json:"count"`
	Overdraft int64         `json:"overdraft,omitempty"`
	Expiry    time.Time     `json:"expiry,omitzero"`
	// RenewAt is when the device should renew (licensing.renewInterval).
	RenewAt time.Time `json:"renewAt,omitzero"`
}

// DenialReason says why a checkout was not granted.
type DenialReason uint8

// Denial reasons.
const (
	NotDenied DenialReason = iota
	DenyNoSuchFeature
	DenyNoSuchVersion
	DenyNotActive
	DenyInsufficient
	DenyModel
	DenyNotOnboarded
)

var denialText = [...]string{
	NotDenied:         "",
	DenyNoSuchFeature: "no such feature",
	DenyNoSuchVersion: "no line serves the requested version",
	DenyNotActive:     "the feature is not yet started or has expired",
	DenyInsufficient:  "insufficient counts",
	DenyModel:         "denied by the license model",
	DenyNotOnboarded:  "the device is not onboarded (security.requireOnboarding)",
}

func (r DenialReason) String() string {
	if int(r) < len(denialText) {
		return denialText[r]
	}
	return fmt.Sprintf("DenialReason(%d)", uint8(r))
}

// MarshalText writes the reason's text.
func (r DenialReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason's text.
func (r *DenialReason) UnmarshalText(b []byte) error {
	for i, t := range denialText {
		if t == string(b) {
			*r = DenialReason(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown denial reason %q", ErrInvalidCommand, b)
}

// Apply applies one request. A refused command returns an error that wraps a
// sentinel of this package and changes nothing but the clock (expiries due by
// the request's time still happen, as they would on the next tick).
func (s *State) Apply(r Request) (Result, error) {
	if r.ID.Session == 0 || r.ID.Seq == 0 {
		return Result{}, fmt.Errorf("%w: session and sequence must be non-zero", ErrInvalidRequest)
	}
	if r.Command == nil {
		return Result{}, fmt.Errorf("%w: no command", ErrInvalidCommand)
	}
	sess := s.sessions[r.ID.Session]
	if sess != nil && sess.seen(r.ID.Seq) {
		return s.duplicate(r.Command), nil
	}
	if err := r.Command.validate(); err != nil {
		return Result{}, err
	}
	if sess == nil && len(s.sessions) >= s.cfg.MaxSessions {
		s.sweepSessions(true)
		if len(s.sessions) >= s.cfg.MaxSessions {
			return Result{}, fmt.Errorf("%w: too many sessions", ErrInvalidRequest)
		}
	}
	if r.At.After(s.now) {
		s.now = r.At.UTC()
	}
	var res Result
	s.advance(&res)
	s.noChange = false
	res2, err := s.dispatch(r.Command)
	if err != nil {
		return res, err
	}
	res2.Changed = append(res.Changed, res2.Changed...)
	if sess == nil {
		sess = &session{}
		s.sessions[r.ID.Session] = sess
	}
	sess.mark(r.ID.Seq)
	sess.lastUsed = s.now
	return res2, nil
}

func (s *State) dispatch(c Command) (Result, error) {
	switch c := c.(type) {
	case *Checkout:
		return s.checkout(c)
	case *Tick:
		return Result{}, nil
	case *Hello:
		d, err := s.hello(c)
		if err != nil {
			return Result{}, err
		}
		return Result{Conn: s.connect(d)}, nil
	case *Disconnect:
		return s.disconnect(c)
	case *DropDevice:
		return s.dropDevice(c)
	case *LoadRights:
		return s.loadRights(c)
	case *RemoveRights:
		return s.removeRights(c)
	case *SetModel:
		return s.setModel(c)
	case *DeleteModel:
		return s.deleteModel()
	case *SetReservations:
		return s.setReservations(c)
	case *DeleteReservations:
		return s.deleteReservations(c)
	case *SetProperty:
		return Result{}, s.setProperty(c)
	case *Audited:
		return s.audited(c)
	case *CreateUser:
		return Result{}, s.createUser(c)
	case *SetUserRoles:
		return Result{}, s.setUserRoles(c)
	case *SetPassword:
		return Result{}, s.setPassword(c)
	case *DeleteUser:
		return Result{}, s.deleteUser(c)
	case *Logout:
		return Result{}, s.logout(c)
	case *SetTokenKey:
		s.setTokenKey(c)
		return Result{}, nil
	case *CreateKeys:
		return Result{}, s.createKeys(c)
	case *SetKeyActive:
		return Result{}, s.setKeyActive(c)
	case *SetKeyDescription:
		return Result{}, s.setKeyDescription(c)
	case *DeleteKey:
		return Result{}, s.deleteKey(c)
	case *Onboard:
		return s.onboard(c)
	case *SetMainLicensingID:
		s.setMainLicensingID(c)
		return Result{}, nil
	case *RestoreBackup:
		return s.restoreBackup(c)
	case *SetClientKey:
		s.setClientKey(c)
		return Result{}, nil
	case *SetClusterCA:
		return Result{}, s.setClusterCA(c)
	case *RaiseLevel:
		return s.raiseLevel(c)
	case *MemberChanged:
		return Result{}, s.memberChanged(c)
	case *CreateJoinToken:
		return Result{}, s.createJoinToken(c)
	case *DeleteJoinToken:
		return Result{}, s.deleteJoinToken(c)
	case *UseJoinToken:
		return Result{}, s.useJoinToken(c)
	case *BeginSync:
		s.beginSync(c)
		return Result{}, nil
	case *CompleteSync:
		return s.completeSync(c)
	}
	return Result{}, fmt.Errorf("%w %T", ErrUnknownCommand, c)
}

// advance frees leases and switches lines whose time has come. It runs
// before every command, so expiry does not wait for a tick.
func (s *State) advance(res *Result) {
	for len(s.expiry) > 0 && !s.now.Before(s.expiry[0].expiry) {
		l := s.expiry[0]
		s.endLease(l)
	}
	if !s.nextLineEvent.IsZero() && !s.now.Before(s.nextLineEvent) {
		res.Changed = append(res.Changed, s.rebuild()...)
	}
	if !s.now.Before(s.nextSweep) {
		s.sweepSessions(false)
		s.nextSweep = s.now.Add(s.cfg.SessionTTL / 4)
	}
}

// endLease frees all of a lease's counts and forgets it.
func (s *State) endLease(l *lease) {
	s.release(l, l.count)
	s.expiry.remove(l)
	l.device.removeLease(l)
	s.recycle(l)
}

const maxSpareLeases = 4096

func (s *State) recycle(l *lease) {
	if len(s.spare) < maxSpareLeases {
		*l = lease{}
		s.spare = append(s.spare, l)
	}
}

func (s *State) newLease() *lease {
	if n := len(s.spare); n > 0 {
		l := s.spare[n-1]
		s.spare = s.spare[:n-1]
		return l
	}
	return &lease{}
}

func (s *State) duplicate(c Command) Result {
	res := Result{Duplicate: true}
	switch c := c.(type) {
	case *Checkout:
		if d := s.devices[c.Device]; d != nil {
			res.Grant = s.grantOf(d, c.Feature, c.Version, d.findLease(c.Feature, c.Version))
		}
	case *Onboard:
		if d := s.deviceByID(c.Device.ID); d != nil && d.credential != nil && bytes.Equal(d.credential, c.PublicKey) {
			res.Onboarded, res.Conn = d.info.ID, d.conn
		}
	case *Hello:
		if d := s.devices[c.Device.ID]; d != nil {
			res.Conn = d.conn
		}
	}
	return res
}

func (s *State) grantOf(d *device, feature string, v version.Version, l *lease) Grant {
	g := Grant{Device: d.info.ID, Feature: feature, Version: v.String()}
	if l == nil {
		return g
	}
	g.Count = l.count
	g.Overdraft = l.overdraftCount()
	g.Expiry = l.expiry
	span := l.expiry.Sub(s.now)
	g.RenewAt = s.now.Add(span * time.Duration(s.policy.renewPercent) / 100)
	return g
}

// rebuild recomputes everything derived from lines, pools and leases:
// which lines are active, the pools' shares, and where every lease draws
// from. Leases are placed again oldest first; one that no longer fits the
// rights is revoked and returned.
func (s *State) rebuild() []Lease {
	s.nextLineEvent = refreshActive(s.families, s.now, len(s.poolNames))
	s.computeShares()
	for _, d := range s.devices {
		s.assignPools(d)
	}
	all := make([]*lease, 0, len(s.expiry))
	all = append(all, s.expiry...)
	slices.SortFunc(all, func(a, b *lease) int { return cmp.Compare(a.seq, b.seq) })
	for _, f := range s.families {
		for _, g := range f.groups {
			g.used, g.overdraftUsed = 0, 0
			for _, ln := range g.lines {
				ln.used, ln.overdraftUsed = 0, 0
			}
		}
	}
	var revoked []Lease
	for _, l := range all {
		l.parts = l.inline[:0]
		var groups []*group
		if f := s.families[l.feature]; f != nil {
			groups = f.serving(l.version)
		}
		if s.plan(l, groups, l.count, false) < l.count {
			info := l.info()
			info.Count = 0
			revoked = append(revoked, info)
			s.expiry.remove(l)
			l.device.removeLease(l)
			continue
		}
		s.take(l, groups, l.count, false, true)
		if exp := s.capExpiry(l, l.expiry); !exp.Equal(l.expiry) {
			l.expiry = exp
			s.expiry.fix(l)
		}
	}
	return revoked
}

// sortedKeys returns a map's keys in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
