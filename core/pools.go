package core

import (
	"fmt"

	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/version"
)

// Pool shares. Every group's total is divided among pools: pool 0 is the
// default pool, which keeps whatever no other pool takes. With a license
// model, pools 1..n are its partitions, given their allocations in written
// order (absolute counts, then percentages of the group's active total
// rounded down, and last a remainder); when rights shrink, earlier
// partitions keep their shares and later ones get less. A device the model
// puts in a pool draws the features that pool names only from it, and every
// other feature from the default pool. With reservations,
// each reserved hostid is a pool holding its entries' counts, taken from the
// lowest serving version first, all or nothing per entry.

// poolAllocation is a model allocation with the pool index it belongs to.
type poolAllocation struct {
	pool  int
	alloc model.Allocation
}

// modelShares divides g's total among the model's pools. It returns the
// shares by pool index (index 0 the default pool) and, when an absolute or
// percentage allocation cannot be met in full, a description of the first
// shortfall.
func modelShares(allocs []poolAllocation, g *group, shares []int64, named []bool) (short string) {
	rem := g.total
	for _, kind := range [...]model.AllocationKind{model.Absolute, model.Percent, model.Remainder} {
		for _, pa := range allocs {
			a := pa.alloc
			if a.Kind != kind || a.Feature != g.name || version.Compare(a.Version, g.version) != 0 {
				continue
			}
			var want int64
			switch kind {
			case model.Absolute:
				want = a.Amount
			case model.Percent:
				want = g.total * a.Amount / 100
			case model.Remainder:
				want = rem
			}
			got := min(want, rem)
			if got < want && short == "" {
				short = fmt.Sprintf("%s %s: partition wants %d, only %d of %d remain", g.name, g.version, want, got, g.total)
			}
			shares[pa.pool] += got
			rem -= got
			if named != nil {
				named[pa.pool] = true
			}
		}
	}
	shares[0] = rem
	return short
}

// modelAllocations lists a model's allocations with their pool indexes.
func modelAllocations(m *model.Model) []poolAllocation {
	var out []poolAllocation
	for i, p := range m.Pools {
		for _, a := range p.Allocations {
			out = append(out, poolAllocation{pool: i + 1, alloc: a})
		}
	}
	return out
}

// computeShares sets every group's pool caps from the model or the
// reservations. refreshActive has sized the pools and put the total in the
// default pool.
func (s *State) computeShares() {
	clear(s.reserveStatus)
	if s.model != nil {
		allocs := modelAllocations(s.model)
		shares := make([]int64, len(s.poolNames))
		named := make([]bool, len(s.poolNames))
		for _, f := range s.families {
			for _, g := range f.groups {
				if g.uncounted {
					continue
				}
				clear(shares)
				clear(named)
				modelShares(allocs, g, shares, named)
				for i := range g.pools {
					g.pools[i].cap = shares[i]
					g.pools[i].named = named[i]
				}
			}
		}
		return
	}
	for _, rg := range s.reservations {
		for _, r := range rg.Reservations {
			pool := s.reservedPools[r.HostID]
			for i, e := range r.Entries {
				key := reserveKey{group: rg.Name, hostID: r.HostID, entry: i}
				s.reserveStatus[key] = s.reserveEntry(pool, e)
			}
		}
	}
}

// reserveEntry moves an entry's counts from the default pool into pool,
// lowest serving version first, if the default pool holds them all.
func (s *State) reserveEntry(pool int, e ReservationEntry) bool {
	f := s.families[e.Feature]
	if f == nil {
		return false
	}
	groups := f.serving(e.Version)
	var avail int64
	for _, g := range groups {
		if g.uncounted {
			return true
		}
		avail += g.pools[0].cap
	}
	if avail < e.Count {
		return false
	}
	need := e.Count
	for _, g := range groups {
		t := min(g.pools[0].cap, need)
		g.pools[0].cap -= t
		g.pools[pool].cap += t
		need -= t
	}
	return true
}

// setModel installs a license model after checking it against the rights.
func (s *State) setModel(c *SetModel) (Result, error) {
	if len(s.reservations) > 0 {
		return Result{}, fmt.Errorf("%w: delete the %d reservation groups before loading a model", ErrModelExclusive, len(s.reservations))
	}
	m, err := model.Parse(c.Text)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	allocs := modelAllocations(m)
	shares := make([]int64, len(m.Pools)+1)
	for _, pa := range allocs {
		a := pa.alloc
		f := s.families[a.Feature]
		if f == nil {
			return Result{}, fmt.Errorf("%w: partition %q allocates %q, which the rights do not hold", ErrUnknownFeature, m.Pools[pa.pool-1].Name, a.Feature)
		}
		g := f.group(a.Version)
		if g == nil {
			return Result{}, fmt.Errorf("%w: partition %q allocates %s %s; the rights hold no line of that version", ErrUnknownFeatureVer, m.Pools[pa.pool-1].Name, a.Feature, a.Version)
		}
		if g.uncounted {
			return Result{}, fmt.Errorf("%w: partition %q allocates %s %s, which is uncounted", ErrInvalidModel, m.Pools[pa.pool-1].Name, a.Feature, a.Version)
		}
		clear(shares)
		if short := modelShares(allocs, g, shares, nil); short != "" {
			return Result{}, fmt.Errorf("%w: %s", ErrOverAllocated, short)
		}
	}
	s.model = m
	s.modelText = c.Text
	s.poolNames = append(s.poolNames[:1], make([]string, len(m.Pools))...)
	for i, p := range m.Pools {
		s.poolNames[i+1] = p.Name
	}
	clear(s.reservedPools)
	return Result{Changed: s.rebuild()}, nil
}

func (s *State) deleteModel() (Result, error) {
	if s.model == nil {
		return Result{}, nil
	}
	s.model = nil
	s.modelText = ""
	s.poolNames = s.poolNames[:1]
	return Result{Changed: s.rebuild()}, nil
}
