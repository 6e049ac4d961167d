package core

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/model"
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
}

type lineSnapshot struct {
	FeatureLine
	Consumed int64 `json:"consumed,omitempty"`
}

type deviceSnapshot struct {
	Info     DeviceInfo      `json:"info"`
	LastSeen time.Time       `json:"lastSeen"`
	Leases   []leaseSnapshot `json:"leases,omitempty"`
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
		ds := deviceSnapshot{Info: d.info, LastSeen: d.lastSeen}
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
	return json.Marshal(snap)
}

// Restore decodes a snapshot into a new state, checking that it is whole
// and consistent; a damaged snapshot is refused with ErrInvalidSnapshot.
func Restore(cfg Config, data []byte) (*State, error) {
	var snap snapshot
	if err := strictUnmarshal(data, &snap); err != nil {
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
	d := &device{info: info, lastSeen: ds.LastSeen.UTC()}
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
