package core

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/strictjson"
	"github.com/tallyhq/tally/core/version"
)

// snapshotFormat is the version of the snapshot encoding.
const snapshotFormat = 1

// The snapshot holds what cannot be derived: the rights, the model text,
// reservations, settings, devices with their leases (and the lines and pools
// each lease draws on), and the request sessions. Everything else is rebuilt
// on restore. Lists are sorted, so equal states give equal bytes.
type snapshot struct {
	Format       int                `json:"format"`
	Now          time.Time          `json:"now"`
	LeaseSeq     uint64             `json:"leaseSeq"`
	NextSweep    time.Time          `json:"nextSweep"`
	Sources      []rightsSource     `json:"sources"`
	Lines        []lineSnapshot     `json:"lines"`
	Model        string             `json:"model,omitempty"`
	Reservations []ReservationGroup `json:"reservations"`
	Properties   map[string]string  `json:"properties"`
	Devices      []deviceSnapshot   `json:"devices"`
	Sessions     []sessionSnapshot  `json:"sessions"`
	Users        []userSnapshot     `json:"users,omitempty"`
	TokenKey     []byte             `json:"tokenKey,omitempty"`
	Audit        []AuditRecord      `json:"audit,omitempty"`
	Keys         []keySnapshot      `json:"keys,omitempty"`
	ClientKey    []byte             `json:"clientKey,omitempty"`
	MainID       *MainLicensingID   `json:"mainId,omitempty"`
	// Level is the state level; omitted at level 1.
	Level int `json:"level,omitempty"`

	// The cluster's trust, which a database restore leaves as it is.
	ClusterCA  *clusterCA  `json:"clusterCa,omitempty"`
	JoinTokens []joinToken `json:"joinTokens,omitempty"`

	// The exchange with the back office, omitted until there is one.
	Sync *syncSnapshot `json:"sync,omitempty"`
}

type keySnapshot struct {
	ID          string        `json:"id"`
	Type        KeyType       `json:"type"`
	Secret      string        `json:"secret"`
	Description string        `json:"description,omitempty"`
	Active      bool          `json:"active,omitempty"`
	Created     time.Time     `json:"created"`
	For         hostid.HostID `json:"for,omitzero"`
	UsedBy      hostid.HostID `json:"usedBy,omitzero"`
	UsedAt      time.Time     `json:"usedAt,omitzero"`
	Uses        uint64        `json:"uses,omitempty"`
}

type userSnapshot struct {
	Name            string    `json:"name"`
	Roles           []Role    `json:"roles"`
	PasswordHash    string    `json:"passwordHash"`
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"passwordChanged"`
	Epoch           uint64    `json:"epoch,omitempty"`
}

type lineSnapshot struct {
	FeatureLine
	Consumed int64 `json:"consumed,omitempty"`
}

type deviceSnapshot struct {
	Info     DeviceInfo      `json:"info"`
	LastSeen time.Time       `json:"lastSeen"`
	Leases   []leaseSnapshot `json:"leases,omitempty"`
	// Credential is the public key the device onboarded with.
	Credential []byte `json:"credential,omitempty"`
	// Conn is the number of the device's latest connection and Asked
	// which connection last asked for each feature (level 2).
	Conn  uint64          `json:"conn,omitempty"`
	Asked []askedSnapshot `json:"asked,omitempty"`
}

type askedSnapshot struct {
	Feature string `json:"feature"`
	Conn    uint64 `json:"conn"`
}

type leaseSnapshot struct {
	Feature string          `json:"feature"`
	Version version.Version `json:"version"`
	Count   int64           `json:"count"`
	Granted time.Time       `json:"granted"`
	Expiry  time.Time       `json:"expiry"`
	Seq     uint64          `json:"seq"`
	Parts   []partSnapshot  `json:"parts"`
}

type partSnapshot struct {
	Line      string `json:"line"`
	Pool      int    `json:"pool"`
	Count     int64  `json:"count"`
	Overdraft bool   `json:"overdraft,omitempty"`
}

type sessionSnapshot struct {
	ID       SessionID                  `json:"id"`
	Highest  uint64                     `json:"highest"`
	Window   [sessionWindow / 64]uint64 `json:"window"`
	LastUsed time.Time                  `json:"lastUsed"`
}

// Snapshot encodes the whole state. Restore(Snapshot()) gives a state that
// behaves the same and snapshots to the same bytes.
func (s *State) Snapshot() ([]byte, error) {
	snap := snapshot{
		Format: snapshotFormat, Now: s.now, LeaseSeq: s.seq, NextSweep: s.nextSweep,
		Model: s.modelText, Reservations: s.reservations, Properties: s.props.values,
		Sources: []rightsSource{}, Lines: []lineSnapshot{}, Devices: []deviceSnapshot{}, Sessions: []sessionSnapshot{},
	}
	if snap.Reservations == nil {
		snap.Reservations = []ReservationGroup{}
	}
	for _, name := range sortedKeys(s.sources) {
		src := *s.sources[name]
		src.Locks = s.props.locks[name]
		snap.Sources = append(snap.Sources, src)
	}
	for _, id := range sortedKeys(s.lines) {
		l := s.lines[id]
		snap.Lines = append(snap.Lines, lineSnapshot{FeatureLine: l.FeatureLine, Consumed: l.consumed})
	}
	for _, d := range s.devices {
		ds := deviceSnapshot{Info: d.info, LastSeen: d.lastSeen, Credential: d.credential, Conn: d.conn}
		for _, a := range d.asked {
			ds.Asked = append(ds.Asked, askedSnapshot{Feature: a.feature, Conn: a.conn})
		}
		for _, l := range d.leases {
			ls := leaseSnapshot{Feature: l.feature, Version: l.version, Count: l.count, Granted: l.granted, Expiry: l.expiry, Seq: l.seq}
			for _, p := range l.parts {
				ls.Parts = append(ls.Parts, partSnapshot{Line: p.line.ID, Pool: p.pool, Count: p.count, Overdraft: p.overdraft})
			}
			ds.Leases = append(ds.Leases, ls)
		}
		slices.SortFunc(ds.Leases, func(a, b leaseSnapshot) int { return cmp.Compare(a.Seq, b.Seq) })
		snap.Devices = append(snap.Devices, ds)
	}
	slices.SortFunc(snap.Devices, func(a, b deviceSnapshot) int { return compareHostIDs(a.Info.ID, b.Info.ID) })
	for _, id := range sortedKeys(s.sessions) {
		sess := s.sessions[id]
		snap.Sessions = append(snap.Sessions, sessionSnapshot{ID: id, Highest: sess.highest, Window: sess.window, LastUsed: sess.lastUsed})
	}
	for _, name := range sortedKeys(s.users) {
		u := s.users[name]
		snap.Users = append(snap.Users, userSnapshot{Name: u.name, Roles: u.roles, PasswordHash: u.hash,
			Created: u.created, PasswordChanged: u.passwordChanged, Epoch: u.epoch})
	}
	snap.TokenKey = s.tokenKey
	snap.Audit = s.audit
	for _, id := range sortedKeys(s.keys) {
		k := s.keys[id]
		snap.Keys = append(snap.Keys, keySnapshot{ID: k.id, Type: k.typ, Secret: k.secret, Description: k.description,
			Active: k.active, Created: k.created, For: k.forDevice, UsedBy: k.usedBy, UsedAt: k.usedAt, Uses: k.uses})
	}
	snap.ClientKey = s.clientKey
	snap.MainID = s.mainID
	if s.Level() > 1 {
		snap.Level = s.Level()
	}
	s.snapshotCluster(&snap)
	snap.Sync = s.snapshotSync()
	return json.Marshal(snap)
}

// Restore decodes a snapshot into a new state, checking that it is whole
// and consistent; a damaged snapshot is refused with ErrInvalidSnapshot.
func Restore(cfg Config, data []byte) (*State, error) {
	var snap snapshot
	if err := strictjson.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	if snap.Format != snapshotFormat {
		return nil, fmt.Errorf("%w: format %d, this server reads %d", ErrInvalidSnapshot, snap.Format, snapshotFormat)
	}
	s, err := restore(cfg, &snap)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	return s, nil
}

func restore(cfg Config, snap *snapshot) (*State, error) {
	s := New(cfg)
	s.now, s.seq, s.nextSweep = snap.Now.UTC(), snap.LeaseSeq, snap.NextSweep.UTC()
	if snap.Level < 0 || snap.Level > Level {
		return nil, fmt.Errorf("state level %d; this server applies 1 to %d", snap.Level, Level)
	}
	s.level = snap.Level

	for _, ls := range snap.Lines {
		fl := ls.FeatureLine
		if err := fl.validate(); err != nil {
			return nil, err
		}
		if _, dup := s.lines[fl.ID]; dup {
			return nil, fmt.Errorf("line %q appears twice", fl.ID)
		}
		if ls.Consumed < 0 || ls.Consumed > fl.Count {
			return nil, fmt.Errorf("line %q consumed %d of %d", fl.ID, ls.Consumed, fl.Count)
		}
		s.lines[fl.ID] = &line{FeatureLine: fl, consumed: ls.Consumed}
	}
	owned := map[string]bool{}
	for i := range snap.Sources {
		src := snap.Sources[i]
		if err := validateSourceName(src.Name); err != nil {
			return nil, err
		}
		for _, id := range src.LineIDs {
			if l := s.lines[id]; l == nil || l.Source != src.Name || owned[id] {
				return nil, fmt.Errorf("source %q lists line %q that is not its own", src.Name, id)
			}
			owned[id] = true
		}
		locks, err := checkLocks(src.Locks)
		if err != nil {
			return nil, err
		}
		src.Locks = locks
		s.sources[src.Name] = &src
		if len(locks) > 0 {
			s.props.locks[src.Name] = locks
		}
	}
	if len(owned) != len(s.lines) {
		return nil, fmt.Errorf("%d lines belong to no source", len(s.lines)-len(owned))
	}
	for name, v := range snap.Properties {
		sp := SetProperty{Name: name, Value: v}
		if err := sp.validate(); err != nil {
			return nil, err
		}
		s.props.values[name] = sp.Value
	}
	s.policy = s.props.policy()
	s.families = buildInventory(s.lines)

	if snap.Model != "" {
		m, err := model.Parse(snap.Model)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		s.model, s.modelText = m, snap.Model
		for _, p := range m.Pools {
			s.poolNames = append(s.poolNames, p.Name)
		}
	}
	if len(snap.Reservations) > 0 {
		if s.model != nil {
			return nil, ErrModelExclusive
		}
		if err := validateReservations(snap.Reservations); err != nil {
			return nil, err
		}
		if !slices.IsSortedFunc(snap.Reservations, func(a, b ReservationGroup) int { return strings.Compare(a.Name, b.Name) }) {
			return nil, fmt.Errorf("reservation groups are not sorted")
		}
		s.installReservations(snap.Reservations)
	}
	s.nextLineEvent = refreshActive(s.families, s.now, len(s.poolNames))
	s.computeShares()

	if len(snap.Devices) > s.cfg.MaxDevices {
		return nil, fmt.Errorf("%d devices, limit %d", len(snap.Devices), s.cfg.MaxDevices)
	}
	for _, ds := range snap.Devices {
		if err := s.restoreDevice(ds); err != nil {
			return nil, err
		}
	}
	for _, ss := range snap.Sessions {
		if ss.ID == 0 {
			return nil, fmt.Errorf("session 0")
		}
		s.sessions[ss.ID] = &session{highest: ss.Highest, window: ss.Window, lastUsed: ss.LastUsed.UTC()}
	}
	if err := s.restoreUsers(snap); err != nil {
		return nil, err
	}
	if err := s.restoreKeys(snap); err != nil {
		return nil, err
	}
	if err := s.restoreCluster(snap); err != nil {
		return nil, err
	}
	if err := s.restoreSync(snap.Sync); err != nil {
		return nil, err
	}
	return s, s.checkAccounts()
}

func (s *State) restoreDevice(ds deviceSnapshot) error {
	info := ds.Info
	if err := info.validate(); err != nil {
		return err
	}
	if _, dup := s.devices[info.ID]; dup {
		return fmt.Errorf("device %s appears twice", info.ID)
	}
	if ds.Credential != nil && (len(ds.Credential) == 0 || len(ds.Credential) > MaxDevicePublicKey) {
		return fmt.Errorf("device %s has a credential of %d bytes", info.ID, len(ds.Credential))
	}
	if ds.Conn != 0 && s.Level() < 2 {
		return fmt.Errorf("device %s has a connection number below level 2", info.ID)
	}
	d := &device{info: info, lastSeen: ds.LastSeen.UTC(), credential: ds.Credential, conn: ds.Conn}
	for _, a := range ds.Asked {
		if err := validateFeatureName(a.Feature); err != nil || a.Conn == 0 || a.Conn > ds.Conn || d.askedBy(a.Feature) != 0 {
			return fmt.Errorf("device %s: connection %d asking for %q is out of range or twice", info.ID, a.Conn, a.Feature)
		}
		d.asked = append(d.asked, asked{feature: a.Feature, conn: a.Conn})
	}
	s.devices[info.ID] = d
	s.assignPools(d)
	for _, ls := range ds.Leases {
		if err := validateFeatureName(ls.Feature); err != nil || ls.Version.IsZero() {
			return fmt.Errorf("device %s has a lease with a bad feature or version", info.ID)
		}
		if ls.Seq == 0 || ls.Seq > s.seq || !ls.Expiry.After(s.now) || d.findLease(ls.Feature, ls.Version) != nil {
			return fmt.Errorf("device %s lease on %s %s is out of order, expired or twice", info.ID, ls.Feature, ls.Version)
		}
		l := &lease{device: d, feature: ls.Feature, version: ls.Version, count: ls.Count,
			granted: ls.Granted.UTC(), expiry: ls.Expiry.UTC(), seq: ls.Seq}
		l.parts = l.inline[:0]
		var sum int64
		for _, ps := range ls.Parts {
			ln := s.lines[ps.Line]
			if ln == nil || !ln.active || ln.Name != ls.Feature || !ln.Version.Serves(ls.Version) {
				return fmt.Errorf("device %s lease on %s draws on line %q that cannot serve it", info.ID, ls.Feature, ps.Line)
			}
			if ps.Pool < 0 || ps.Pool >= len(s.poolNames) || ps.Count <= 0 {
				return fmt.Errorf("device %s lease on %s has a bad part", info.ID, ls.Feature)
			}
			p := leasePart{line: ln, pool: ps.Pool, count: ps.Count, overdraft: ps.Overdraft}
			l.parts = append(l.parts, p)
			sum += p.count
			g := ln.group
			switch {
			case p.overdraft:
				ln.overdraftUsed += p.count
				g.overdraftUsed += p.count
			case ln.Uncounted:
				ln.used += p.count
			default:
				ln.used += p.count
				g.used += p.count
				g.pools[p.pool].used += p.count
			}
		}
		if sum != l.count || sum <= 0 {
			return fmt.Errorf("device %s lease on %s counts %d but its parts %d", info.ID, ls.Feature, l.count, sum)
		}
		d.leases = append(d.leases, l)
		s.expiry.push(l)
	}
	return nil
}

// checkAccounts verifies that no line or group is used past its counts.
func (s *State) checkAccounts() error {
	for _, l := range s.lines {
		if l.Uncounted {
			continue
		}
		if l.used+l.consumed > l.Count || l.overdraftUsed > l.Overdraft {
			return fmt.Errorf("line %q is used %d+%d overdraft of %d+%d", l.ID, l.used+l.consumed, l.overdraftUsed, l.Count, l.Overdraft)
		}
	}
	return nil
}

// restoreUsers checks and installs the administrators and the token key.
func (s *State) restoreUsers(snap *snapshot) error {
	if len(snap.Users) > MaxUsers {
		return fmt.Errorf("%d users, limit %d", len(snap.Users), MaxUsers)
	}
	for _, us := range snap.Users {
		if err := validateUserName(us.Name); err != nil {
			return err
		}
		if err := validatePasswordHash(us.PasswordHash); err != nil {
			return fmt.Errorf("user %q: %w", us.Name, err)
		}
		roles, err := canonicalRoles(us.Roles)
		if err != nil || !slices.Equal(roles, us.Roles) {
			return fmt.Errorf("user %q has bad or unsorted roles", us.Name)
		}
		if _, dup := s.users[us.Name]; dup {
			return fmt.Errorf("user %q appears twice", us.Name)
		}
		s.users[us.Name] = &userRecord{name: us.Name, roles: roles, hash: us.PasswordHash,
			created: us.Created.UTC(), passwordChanged: us.PasswordChanged.UTC(), epoch: us.Epoch}
	}
	if len(s.users) > 0 && s.admins() == 0 {
		return fmt.Errorf("no user holds ADMIN")
	}
	if len(snap.TokenKey) != 0 && len(snap.TokenKey) != TokenKeyLen {
		return fmt.Errorf("token key of %d bytes", len(snap.TokenKey))
	}
	if len(snap.TokenKey) > 0 {
		s.tokenKey = snap.TokenKey
	}
	return s.restoreAudit(snap.Audit)
}

// restoreAudit checks the audit chain and the records' fields.
func (s *State) restoreAudit(records []AuditRecord) error {
	for i := range records {
		r := &records[i]
		r.At = r.At.UTC()
		if validateLabel("audit user", r.User, maxActorLen) != nil || validateLabel("audit address", r.Address, maxActorLen) != nil ||
			r.Action == "" || validateLabel("audit action", r.Action, maxActorLen) != nil ||
			validateLabel("audit detail", r.Detail, maxAuditDetailLen) != nil {
			return fmt.Errorf("audit record %d has a bad field", r.Seq)
		}
		if r.At.After(s.now) {
			return fmt.Errorf("audit record %d is later than the state's clock", r.Seq)
		}
	}
	if err := verifyAuditChain(records); err != nil {
		return err
	}
	if len(records) > 0 {
		s.audit = records
	}
	return nil
}

// restoreKeys checks and installs the first-authentication keys and the
// client key.
func (s *State) restoreKeys(snap *snapshot) error {
	if len(snap.Keys) > MaxKeys {
		return fmt.Errorf("%d keys, limit %d", len(snap.Keys), MaxKeys)
	}
	for _, ks := range snap.Keys {
		if err := validateKeyID(ks.ID); err != nil {
			return err
		}
		if err := validateKeySecret(ks.Secret); err != nil {
			return fmt.Errorf("key %s: %w", ks.ID, err)
		}
		if err := validateKeyDescription(ks.Description); err != nil {
			return err
		}
		if !ks.Type.valid() {
			return fmt.Errorf("key %s has type %d", ks.ID, uint8(ks.Type))
		}
		if s.keys[ks.ID] != nil || s.keyBySecret[ks.Secret] != nil {
			return fmt.Errorf("key %s or its secret appears twice", ks.ID)
		}
		used := ks.UsedBy != hostid.HostID{}
		if used {
			if id, err := hostid.New(ks.UsedBy.Value, ks.UsedBy.Type); err != nil || id != ks.UsedBy {
				return fmt.Errorf("key %s was used by a bad hostid", ks.ID)
			}
		}
		if used != (ks.Uses > 0) || used == ks.UsedAt.IsZero() || ks.Type == KeyOneTime && ks.Uses > 1 {
			return fmt.Errorf("key %s has %d uses that do not match its user", ks.ID, ks.Uses)
		}
		if err := validateKeyFor(ks.Type, NewKey{ID: ks.ID, For: ks.For}); err != nil {
			return err
		}
		k := &firstAuthKey{id: ks.ID, typ: ks.Type, secret: ks.Secret, description: ks.Description, active: ks.Active,
			created: ks.Created.UTC(), forDevice: ks.For, usedBy: ks.UsedBy, usedAt: ks.UsedAt.UTC(), uses: ks.Uses}
		s.keys[k.id] = k
		s.keyBySecret[k.secret] = k
	}
	if snap.ClientKey != nil && (len(snap.ClientKey) == 0 || len(snap.ClientKey) > MaxClientKeyLen) {
		return fmt.Errorf("client key of %d bytes", len(snap.ClientKey))
	}
	s.clientKey = snap.ClientKey
	if snap.MainID != nil {
		if err := snap.MainID.validate(); err != nil {
			return err
		}
		s.mainID = snap.MainID
	}
	return nil
}
