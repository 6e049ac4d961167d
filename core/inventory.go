package core

import (
	"cmp"
	"slices"
	"time"

	"github.com/tallyhq/tally/core/version"
)

// line is a feature line as the engine tracks it.
type line struct {
	FeatureLine
	group         *group
	active        bool
	used          int64 // counts held by leases, overdraft excluded
	overdraftUsed int64
	consumed      int64 // counts of a metered, non-reusable line used up for good
}

// free is what the line can still grant within its count.
func (l *line) free() int64 { return l.Count - l.used - l.consumed }

// group is the lines of one feature at one version: the row of the Features
// view and the unit that pools divide.
type group struct {
	name    string
	version version.Version
	lines   []*line // all lines, latest expiry first (permanent before any)
	active  []*line // the usable ones, in the same order

	// Sums over active lines.
	total, overdraft int64
	uncounted        bool
	used             int64
	overdraftUsed    int64
	consumed         int64

	// pools[i] is pool i's share of total; pools[0] is the default pool.
	pools []poolAccount

	// scratch holds counts tentatively taken while planning a grant.
	scratch, scratchOverdraft int64

	// usage is the group's row in the open usage window, valid while
	// usageEpoch is the window's epoch (see countUsage).
	usage      *usageCount
	usageEpoch uint64
}

type poolAccount struct {
	cap  int64 // counts the pool may use
	used int64 // counts charged to it
	// named is set when the license model allocates this group to the pool;
	// the pool's devices draw other groups from the default pool.
	named bool
}

func (g *group) free() int64 { return g.total - g.used - g.consumed }

// family is every group of one feature name, in ascending version order.
type family struct {
	name   string
	groups []*group
}

// serving returns the groups that serve a request for version want: the
// suffix of groups with version >= want. Features rarely have more than a
// few versions, so a linear scan beats a binary search.
func (f *family) serving(want version.Version) []*group {
	for i, g := range f.groups {
		if version.Compare(g.version, want) >= 0 {
			return f.groups[i:]
		}
	}
	return nil
}

// group returns the group whose version equals v, or nil.
func (f *family) group(v version.Version) *group {
	if rest := f.serving(v); len(rest) > 0 && version.Compare(rest[0].version, v) == 0 {
		return rest[0]
	}
	return nil
}

// buildInventory groups the lines into families and groups.
func buildInventory(lines map[string]*line) map[string]*family {
	families := make(map[string]*family)
	for _, id := range sortedKeys(lines) {
		l := lines[id]
		f := families[l.Name]
		if f == nil {
			f = &family{name: l.Name}
			families[l.Name] = f
		}
		g := f.group(l.Version)
		if g == nil {
			g = &group{name: l.Name, version: l.Version}
			f.groups = append(f.groups, g)
			slices.SortFunc(f.groups, func(a, b *group) int { return version.Compare(a.version, b.version) })
		}
		l.group = g
		g.lines = append(g.lines, l)
	}
	for _, f := range families {
		for _, g := range f.groups {
			slices.SortFunc(g.lines, compareLines)
		}
	}
	return families
}

// compareLines orders lines latest expiry first, so leases draw on the lines
// that last longest, then by ID.
func compareLines(a, b *line) int {
	switch {
	case a.Expiry.IsZero() && !b.Expiry.IsZero():
		return -1
	case !a.Expiry.IsZero() && b.Expiry.IsZero():
		return 1
	}
	if c := b.Expiry.Compare(a.Expiry); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// refreshActive marks which lines are usable at now, sums the groups, sizes
// their pool tables and returns when the next line starts or expires.
func refreshActive(families map[string]*family, now time.Time, npools int) time.Time {
	var next time.Time
	for _, f := range families {
		for _, g := range f.groups {
			g.active = g.active[:0]
			g.total, g.overdraft, g.uncounted = 0, 0, false
			g.consumed = 0
			for _, l := range g.lines {
				l.active = l.activeAt(now)
				if l.Start.After(now) && (next.IsZero() || l.Start.Before(next)) {
					next = l.Start
				}
				if !l.Expiry.IsZero() && l.Expiry.After(now) && (next.IsZero() || l.Expiry.Before(next)) {
					next = l.Expiry
				}
				if !l.active {
					continue
				}
				g.active = append(g.active, l)
				g.total += l.Count
				g.overdraft += l.Overdraft
				g.uncounted = g.uncounted || l.Uncounted
				g.consumed += l.consumed
			}
			g.pools = slices.Grow(g.pools[:0], npools)[:npools]
			clear(g.pools)
			g.pools[0].cap = g.total
		}
	}
	return next
}
