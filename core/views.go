package core

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/version"
)

// The read side: what the Features, Devices, Pools, Reservations and
// Properties views show. Every list is sorted so that pages are stable.

// FeatureSummary is a row of the Features view: the active lines of one
// feature at one version, summed.
type FeatureSummary struct {
	Name      string          `json:"name"`
	Version   version.Version `json:"version"`
	Total     int64           `json:"total"`
	Used      int64           `json:"used"`
	Available int64           `json:"available"`
	// FirstExpiry and LastExpiry span the lines' expiries; a zero
	// LastExpiry means a line is permanent.
	FirstExpiry   time.Time `json:"firstExpiry,omitzero"`
	LastExpiry    time.Time `json:"lastExpiry,omitzero"`
	Overdraft     int64     `json:"overdraft"`
	OverdraftUsed int64     `json:"overdraftUsed"`
	Metered       bool      `json:"metered"`
	Counted       bool      `json:"counted"`
}

// Features lists every feature and version the rights hold, by name and version.
func (s *State) Features() []FeatureSummary {
	var out []FeatureSummary
	for _, name := range sortedKeys(s.families) {
		for _, g := range s.families[name].groups {
			out = append(out, s.summary(g))
		}
	}
	return out
}

func (s *State) summary(g *group) FeatureSummary {
	fs := FeatureSummary{
		Name: g.name, Version: g.version, Total: g.total, Used: g.used + g.consumed,
		Overdraft: g.overdraft, OverdraftUsed: g.overdraftUsed, Counted: !g.uncounted,
	}
	if g.uncounted {
		fs.Total = 0
		for _, l := range g.active {
			fs.Used += l.used
		}
	}
	fs.Available = max(0, fs.Total-fs.Used)
	permanent := false
	for _, l := range g.active {
		fs.Metered = fs.Metered || l.Metered
		if l.Expiry.IsZero() {
			permanent = true
			continue
		}
		if fs.FirstExpiry.IsZero() || l.Expiry.Before(fs.FirstExpiry) {
			fs.FirstExpiry = l.Expiry
		}
		if l.Expiry.After(fs.LastExpiry) {
			fs.LastExpiry = l.Expiry
		}
	}
	if permanent {
		fs.LastExpiry = time.Time{}
	}
	return fs
}

// FeatureDetail is the details view of one feature at one version.
type FeatureDetail struct {
	FeatureSummary
	Start         time.Time        `json:"start,omitzero"`
	Reserved      int64            `json:"reserved"`
	VendorStrings []string         `json:"vendorStrings,omitempty"`
	Lines         []FeatureLine    `json:"lines"`
	Served        []ServedDevice   `json:"served"`
	Pools         []PoolFeatureUse `json:"pools,omitempty"`
}

// ServedDevice is a device holding counts of a feature.
type ServedDevice struct {
	Device    hostid.HostID `json:"device"`
	Type      DeviceType    `json:"deviceType"`
	Alias     string        `json:"alias,omitempty"`
	Count     int64         `json:"count"`
	Overdraft int64         `json:"overdraft,omitempty"`
	Expiry    time.Time     `json:"expiry"`
}

// FeatureDetails returns the details of a feature at exactly version v.
func (s *State) FeatureDetails(name string, v version.Version) (FeatureDetail, error) {
	f := s.families[name]
	if f == nil {
		return FeatureDetail{}, fmt.Errorf("%w %q", ErrUnknownFeature, name)
	}
	g := f.group(v)
	if g == nil {
		return FeatureDetail{}, fmt.Errorf("%w: %s %s", ErrUnknownFeatureVer, name, v)
	}
	d := FeatureDetail{FeatureSummary: s.summary(g)}
	started := false
	for _, l := range g.lines {
		d.Lines = append(d.Lines, l.FeatureLine)
		if l.active && (!started || l.Start.Before(d.Start)) {
			d.Start, started = l.Start, true
		}
		if l.VendorString != "" && !slices.Contains(d.VendorStrings, l.VendorString) {
			d.VendorStrings = append(d.VendorStrings, l.VendorString)
		}
	}
	if s.model == nil { // without a model, pools past the default are reservations
		for _, p := range g.pools[1:] {
			d.Reserved += p.cap
		}
	}
	served := map[*lease]*ServedDevice{}
	var order []*lease
	for _, l := range s.expiry {
		for _, p := range l.parts {
			if p.line.group != g {
				continue
			}
			sd := served[l]
			if sd == nil {
				sd = &ServedDevice{Device: l.device.info.ID, Type: l.device.info.Type, Alias: l.device.info.Alias, Expiry: l.expiry}
				served[l] = sd
				order = append(order, l)
			}
			sd.Count += p.count
			if p.overdraft {
				sd.Overdraft += p.count
			}
		}
	}
	slices.SortFunc(order, func(a, b *lease) int { return compareHostIDs(a.device.info.ID, b.device.info.ID) })
	for _, l := range order {
		d.Served = append(d.Served, *served[l])
	}
	if s.model != nil {
		for i := range g.pools {
			d.Pools = append(d.Pools, s.poolUse(g, i))
		}
	}
	return d, nil
}

func compareHostIDs(a, b hostid.HostID) int {
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

// DeviceSummary is a row of the Devices view.
type DeviceSummary struct {
	ID       hostid.HostID `json:"id"`
	Type     DeviceType    `json:"deviceType"`
	Alias    string        `json:"alias,omitempty"`
	LastSeen time.Time     `json:"lastSeen"`
	// Expiry is the latest expiry of the device's leases; zero with none.
	Expiry time.Time `json:"expiry,omitzero"`
	Pool   string    `json:"pool"`
}

// DeviceDetail is the details view of a device.
type DeviceDetail struct {
	DeviceSummary
	Info   DeviceInfo `json:"info"`
	Leases []Lease    `json:"leases"`
}

// Devices lists every device, by hostid type and value.
func (s *State) Devices() []DeviceSummary {
	out := make([]DeviceSummary, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, s.deviceSummary(d))
	}
	slices.SortFunc(out, func(a, b DeviceSummary) int { return compareHostIDs(a.ID, b.ID) })
	return out
}

// DeviceCount is the number of known devices.
func (s *State) DeviceCount() int { return len(s.devices) }

func (s *State) deviceSummary(d *device) DeviceSummary {
	ds := DeviceSummary{ID: d.info.ID, Type: d.info.Type, Alias: d.info.Alias, LastSeen: d.lastSeen}
	for _, l := range d.leases {
		if l.expiry.After(ds.Expiry) {
			ds.Expiry = l.expiry
		}
	}
	switch {
	case d.modelDeny:
		ds.Pool = "(denied)"
	case len(d.pools) > 0:
		ds.Pool = s.poolNames[d.pools[0]]
	}
	return ds
}

// Device returns the details of a device.
func (s *State) Device(id hostid.HostID) (DeviceDetail, error) {
	d := s.deviceByID(id)
	if d == nil {
		return DeviceDetail{}, fmt.Errorf("%w %s", ErrUnknownDevice, id)
	}
	dd := DeviceDetail{DeviceSummary: s.deviceSummary(d), Info: d.info, Leases: []Lease{}}
	for _, l := range d.leases {
		dd.Leases = append(dd.Leases, l.info())
	}
	slices.SortFunc(dd.Leases, func(a, b Lease) int {
		if c := strings.Compare(a.Feature, b.Feature); c != 0 {
			return c
		}
		return version.Compare(a.Version, b.Version)
	})
	return dd, nil
}

// PoolFeatureUse is one feature's share in one pool.
type PoolFeatureUse struct {
	Pool      string          `json:"pool"`
	Feature   string          `json:"feature"`
	Version   version.Version `json:"version"`
	Expiry    time.Time       `json:"expiry,omitzero"`
	Allocated int64           `json:"allocated"`
	Used      int64           `json:"used"`
	// Status is "ok", "short" when the rights no longer hold what the model
	// allocates, or "over" when leases granted before a change exceed the share.
	Status string `json:"status"`
}

// PoolSummary is a pool of the Named license pools view.
type PoolSummary struct {
	ID       int              `json:"id"`
	Name     string           `json:"name"`
	Features []PoolFeatureUse `json:"features"`
}

// Pools lists the pools with each feature's share and use: the default pool
// first, then the model's partitions or the reservations.
func (s *State) Pools() []PoolSummary {
	out := make([]PoolSummary, len(s.poolNames))
	for i, name := range s.poolNames {
		out[i] = PoolSummary{ID: i, Name: name, Features: []PoolFeatureUse{}}
	}
	var allocs []poolAllocation
	var shares []int64
	if s.model != nil {
		allocs = modelAllocations(s.model)
		shares = make([]int64, len(s.poolNames))
	}
	for _, name := range sortedKeys(s.families) {
		for _, g := range s.families[name].groups {
			if g.uncounted {
				continue
			}
			wanted := map[int]bool{}
			if s.model != nil {
				clear(shares)
				modelShares(allocs, g, shares, nil)
				for _, pa := range allocs {
					if pa.alloc.Feature == g.name && version.Compare(pa.alloc.Version, g.version) == 0 {
						wanted[pa.pool] = true
					}
				}
			}
			for i := range g.pools {
				if i > 0 && g.pools[i].cap == 0 && g.pools[i].used == 0 && !wanted[i] {
					continue
				}
				out[i].Features = append(out[i].Features, s.poolUse(g, i))
			}
		}
	}
	return out
}

func (s *State) poolUse(g *group, i int) PoolFeatureUse {
	u := PoolFeatureUse{
		Pool: s.poolNames[i], Feature: g.name, Version: g.version,
		Allocated: g.pools[i].cap, Used: g.pools[i].used, Status: "ok",
	}
	if fs := s.summary(g); !fs.LastExpiry.IsZero() {
		u.Expiry = fs.LastExpiry
	}
	if u.Used > u.Allocated {
		u.Status = "over"
	} else if s.model != nil && i > 0 {
		allocs := modelAllocations(s.model)
		for _, pa := range allocs {
			a := pa.alloc
			if pa.pool == i && a.Feature == g.name && version.Compare(a.Version, g.version) == 0 && a.Kind == model.Absolute && a.Amount > u.Allocated {
				u.Status = "short"
			}
		}
	}
	return u
}

// ModelText returns the license model definition in force, or "".
func (s *State) ModelText() string { return s.modelText }

// ReservationRow is a row of the Reservations view: one entry and whether
// the rights can hold it.
type ReservationRow struct {
	Group       string          `json:"group"`
	HostID      hostid.HostID   `json:"hostId"`
	Feature     string          `json:"feature"`
	Version     version.Version `json:"version"`
	Count       int64           `json:"count"`
	Satisfiable bool            `json:"satisfiable"`
}

// Reservations returns the reservation groups, sorted by name.
func (s *State) Reservations() []ReservationGroup { return slices.Clone(s.reservations) }

// ReservationRows lists every reservation entry with its status.
func (s *State) ReservationRows() []ReservationRow {
	var out []ReservationRow
	for _, g := range s.reservations {
		for _, r := range g.Reservations {
			for i, e := range r.Entries {
				out = append(out, ReservationRow{
					Group: g.Name, HostID: r.HostID, Feature: e.Feature, Version: e.Version, Count: e.Count,
					Satisfiable: s.reserveStatus[reserveKey{group: g.Name, hostID: r.HostID, entry: i}],
				})
			}
		}
	}
	return out
}

// Properties lists every property with its value in force.
func (s *State) Properties() []Property {
	out := make([]Property, len(propertyDefs))
	for i := range propertyDefs {
		d := &propertyDefs[i]
		v, locked := s.props.effective(d)
		out[i] = Property{PropertyDef: *d, Value: v, Locked: locked}
	}
	return out
}

// Property returns one property by name.
func (s *State) Property(name string) (Property, error) {
	d, ok := lookupProperty(name)
	if !ok {
		return Property{}, fmt.Errorf("%w %q", ErrUnknownProperty, name)
	}
	v, locked := s.props.effective(d)
	return Property{PropertyDef: *d, Value: v, Locked: locked}, nil
}
