package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/strictjson"
	"github.com/tallyhq/tally/core/version"
)

// ReservationGroup is a named set of reservations, replaced whole on import.
type ReservationGroup struct {
	Name         string        `json:"name"`
	Reservations []Reservation `json:"reservations"`
}

// Reservation sets counts aside for the device with a hostid.
type Reservation struct {
	HostID  hostid.HostID      `json:"hostId"`
	Entries []ReservationEntry `json:"reservationEntries"`
}

// ReservationEntry is counts of a feature at a version (or any later one).
type ReservationEntry struct {
	Feature string          `json:"featureName"`
	Version version.Version `json:"featureVersion"`
	Count   int64           `json:"featureCount"`
}

// Limits on reservation input.
const (
	maxGroupName          = 128
	maxReservationsJSON   = 16 << 20
	maxEntriesPerReserved = 1000
)

type reserveKey struct {
	group  string
	hostID hostid.HostID
	entry  int
}

// ParseReservations reads reservation groups in the import form: a JSON
// array of groups (a single group object is accepted too). Unknown fields,
// bad hostids, versions or counts, and a hostid named twice are refused
// with an error that says where.
func ParseReservations(data []byte) ([]ReservationGroup, error) {
	if len(data) > maxReservationsJSON {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidReserve, len(data), maxReservationsJSON)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		trimmed = append(append([]byte{'['}, trimmed...), ']')
	}
	var groups []ReservationGroup
	if err := strictjson.Unmarshal(trimmed, &groups); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidReserve, err)
	}
	if groups == nil {
		return nil, fmt.Errorf("%w: expected an array of reservation groups", ErrInvalidReserve)
	}
	if err := validateReservations(groups); err != nil {
		return nil, err
	}
	return groups, nil
}

// FormatReservations writes groups in the import form.
func FormatReservations(groups []ReservationGroup) ([]byte, error) {
	if groups == nil {
		groups = []ReservationGroup{}
	}
	return json.MarshalIndent(groups, "", "  ")
}

// validateReservations checks groups on their own (not against the rights)
// and puts hostids in canonical form.
func validateReservations(groups []ReservationGroup) error {
	names := map[string]bool{}
	for gi := range groups {
		g := &groups[gi]
		if strings.TrimSpace(g.Name) == "" {
			return fmt.Errorf("%w: group %d has no name", ErrInvalidReserve, gi+1)
		}
		if err := validateLabel("group name", g.Name, maxGroupName); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidReserve, err)
		}
		if names[g.Name] {
			return fmt.Errorf("%w: group %q appears twice", ErrInvalidReserve, g.Name)
		}
		names[g.Name] = true
		if len(g.Reservations) == 0 {
			return fmt.Errorf("%w: group %q holds no reservations", ErrInvalidReserve, g.Name)
		}
		for ri := range g.Reservations {
			r := &g.Reservations[ri]
			h, err := hostid.New(r.HostID.Value, r.HostID.Type)
			if err != nil {
				return fmt.Errorf("%w: group %q reservation %d: %w", ErrInvalidReserve, g.Name, ri+1, err)
			}
			r.HostID = h
			if len(r.Entries) == 0 || len(r.Entries) > maxEntriesPerReserved {
				return fmt.Errorf("%w: group %q, %s: %d entries, want 1 to %d", ErrInvalidReserve, g.Name, h, len(r.Entries), maxEntriesPerReserved)
			}
			for ei, e := range r.Entries {
				where := fmt.Sprintf("group %q, %s, entry %d", g.Name, h, ei+1)
				if err := validateFeatureName(e.Feature); err != nil {
					return fmt.Errorf("%w: %s: %w", ErrInvalidReserve, where, err)
				}
				if e.Version.IsZero() {
					return fmt.Errorf("%w: %s: no featureVersion", ErrInvalidReserve, where)
				}
				if e.Count <= 0 || e.Count > MaxCount {
					return fmt.Errorf("%w: %s: featureCount %d is outside 1..%d", ErrInvalidCount, where, e.Count, MaxCount)
				}
			}
		}
	}
	return checkReservedOnce(groups)
}

// checkReservedOnce refuses a hostid that two reservations name: a device
// must know which counts are its own.
func checkReservedOnce(groups []ReservationGroup) error {
	seen := map[hostid.HostID]string{}
	for _, g := range groups {
		for _, r := range g.Reservations {
			if other, ok := seen[r.HostID]; ok {
				if other == g.Name {
					return fmt.Errorf("%w: %s is reserved twice in group %q", ErrInvalidReserve, r.HostID, g.Name)
				}
				return fmt.Errorf("%w: %s is reserved in groups %q and %q", ErrInvalidReserve, r.HostID, other, g.Name)
			}
			seen[r.HostID] = g.Name
		}
	}
	return nil
}

// setReservations adds groups, replacing any of the same name whole.
func (s *State) setReservations(c *SetReservations) (Result, error) {
	if s.model != nil {
		return Result{}, fmt.Errorf("%w: delete the license model before adding reservations", ErrModelExclusive)
	}
	for _, g := range c.Groups {
		for _, r := range g.Reservations {
			for _, e := range r.Entries {
				f := s.families[e.Feature]
				if f == nil {
					return Result{}, fmt.Errorf("%w: group %q reserves %q, which the rights do not hold", ErrUnknownFeature, g.Name, e.Feature)
				}
				if len(f.serving(e.Version)) == 0 {
					return Result{}, fmt.Errorf("%w: group %q reserves %s %s; no line serves that version", ErrUnknownFeatureVer, g.Name, e.Feature, e.Version)
				}
			}
		}
	}
	merged := slices.DeleteFunc(slices.Clone(s.reservations), func(g ReservationGroup) bool {
		return slices.ContainsFunc(c.Groups, func(n ReservationGroup) bool { return n.Name == g.Name })
	})
	merged = append(merged, c.Groups...)
	slices.SortFunc(merged, func(a, b ReservationGroup) int { return strings.Compare(a.Name, b.Name) })
	if err := checkReservedOnce(merged); err != nil {
		return Result{}, err
	}
	if len(merged) > maxReservedPools {
		return Result{}, fmt.Errorf("%w: %d groups, at most %d", ErrInvalidReserve, len(merged), maxReservedPools)
	}
	s.installReservations(merged)
	return Result{Changed: s.rebuild()}, nil
}

func (s *State) deleteReservations(c *DeleteReservations) (Result, error) {
	for _, name := range c.Names {
		if !slices.ContainsFunc(s.reservations, func(g ReservationGroup) bool { return g.Name == name }) {
			return Result{}, fmt.Errorf("%w %q", ErrUnknownGroup, name)
		}
	}
	kept := slices.DeleteFunc(slices.Clone(s.reservations), func(g ReservationGroup) bool {
		return slices.Contains(c.Names, g.Name)
	})
	s.installReservations(kept)
	return Result{Changed: s.rebuild()}, nil
}

// installReservations makes groups the reservations and numbers their pools.
func (s *State) installReservations(groups []ReservationGroup) {
	s.reservations = groups
	s.poolNames = s.poolNames[:1]
	clear(s.reservedPools)
	for _, g := range groups {
		for _, r := range g.Reservations {
			s.reservedPools[r.HostID] = len(s.poolNames)
			s.poolNames = append(s.poolNames, "reservation "+g.Name+": "+r.HostID.String())
		}
	}
}
