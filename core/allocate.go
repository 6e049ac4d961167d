package core

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
)

// checkout sets the count a device holds of a feature: more counts are
// granted all or nothing, fewer free the difference at once, the same count
// renews, and zero returns the lease. Every grant extends the lease to the
// borrow interval (capped by the lines' expiry).
func (s *State) checkout(c *Checkout) (Result, error) {
	d := s.devices[c.Device]
	if d == nil {
		return Result{}, fmt.Errorf("%w %s: it must say hello first", ErrUnknownDevice, c.Device)
	}
	if err := d.supersedes(c); err != nil {
		return Result{}, err
	}
	res, err := s.applyCheckout(d, c)
	if err == nil && c.Conn != 0 {
		s.setAsked(d, c.Feature, c.Version, c.Conn)
	}
	return res, err
}

func (s *State) applyCheckout(d *device, c *Checkout) (Result, error) {
	d.lastSeen = s.now
	l := d.findLease(c.Feature, c.Version)
	var have int64
	if l != nil {
		have = l.count
	}
	if c.Count == 0 {
		if l != nil {
			s.endLease(l)
		}
		return Result{Grant: s.grantOf(d, c.Feature, c.Version, nil)}, nil
	}
	if d.modelDeny && c.Count >= have {
		// A device the model denies gets no more and no renewal; what it
		// holds runs out at its expiry.
		return Result{Grant: s.grantOf(d, c.Feature, c.Version, l), Denied: DenyModel}, nil
	}
	if s.policy.requireOnboarding && d.credential == nil && c.Count >= have {
		// Likewise for a device that has not onboarded while the policy
		// asks for it.
		return Result{Grant: s.grantOf(d, c.Feature, c.Version, l), Denied: DenyNotOnboarded}, nil
	}
	if c.Count > have {
		groups, reason := s.servingGroups(c)
		if reason != NotDenied {
			return Result{Grant: s.grantOf(d, c.Feature, c.Version, l), Denied: reason}, nil
		}
		if len(d.leases) >= maxDeviceLeases && l == nil {
			return Result{}, fmt.Errorf("%w: device %s holds %d leases, at most %d", ErrInvalidCommand, d.info.ID, len(d.leases), maxDeviceLeases)
		}
		fresh := l == nil
		if fresh {
			s.seq++
			l = s.newLease()
			*l = lease{device: d, feature: c.Feature, version: c.Version, granted: s.now, seq: s.seq}
			l.parts = l.inline[:0]
		}
		if s.plan(l, groups, c.Count-have, true) < c.Count-have {
			if fresh {
				s.recycle(l)
				l = nil
			}
			return Result{Grant: s.grantOf(d, c.Feature, c.Version, l), Denied: DenyInsufficient}, nil
		}
		mark := s.usageMark(groups)
		s.take(l, groups, c.Count-have, true, true)
		s.countUsage(groups, mark)
		l.count = c.Count
		if fresh {
			d.leases = append(d.leases, l)
			l.expiry = s.leaseExpiry(l, c.Borrow)
			s.expiry.push(l)
			return Result{Grant: s.grantOf(d, c.Feature, c.Version, l)}, nil
		}
	} else if c.Count < have {
		s.release(l, have-c.Count)
	}
	l.expiry = s.leaseExpiry(l, c.Borrow)
	s.expiry.fix(l)
	return Result{Grant: s.grantOf(d, c.Feature, c.Version, l)}, nil
}

// servingGroups returns the groups that serve a checkout, or why none can.
func (s *State) servingGroups(c *Checkout) ([]*group, DenialReason) {
	f := s.families[c.Feature]
	if f == nil {
		return nil, DenyNoSuchFeature
	}
	groups := f.serving(c.Version)
	if len(groups) == 0 {
		return nil, DenyNoSuchVersion
	}
	for _, g := range groups {
		if len(g.active) > 0 {
			return groups, NotDenied
		}
	}
	return nil, DenyNotActive
}

// leaseExpiry is now plus the borrow interval asked for (the default when
// zero, at most the maximum), capped by the expiry of every line drawn on.
func (s *State) leaseExpiry(l *lease, borrow time.Duration) time.Time {
	if borrow <= 0 {
		borrow = s.policy.borrow
	}
	borrow = min(borrow, s.policy.borrowMax)
	return s.capExpiry(l, s.now.Add(borrow))
}

func (s *State) capExpiry(l *lease, t time.Time) time.Time {
	for _, p := range l.parts {
		if e := p.line.Expiry; !e.IsZero() && e.Before(t) {
			t = e
		}
	}
	return t
}

// plan returns how many of need counts take could draw for l from groups,
// up to need, without changing anything.
func (s *State) plan(l *lease, groups []*group, need int64, strict bool) int64 {
	got := s.take(l, groups, need, strict, false)
	for _, g := range groups {
		g.scratch, g.scratchOverdraft = 0, 0
	}
	return got
}

// take draws up to need counts for l from groups and returns how many it
// took: uncounted lines first, then each of the device's pools over the
// groups lowest version first, then overdraft. With strict, a device only
// draws on the pools it may use within their shares; without (placing
// existing leases again after a change), shares are ignored and only the
// lines' counts and overdraft limit. Without commit it only records
// tentative takes in the groups' scratch fields (see plan).
func (s *State) take(l *lease, groups []*group, need int64, strict, commit bool) int64 {
	for _, g := range groups {
		if g.uncounted {
			if commit {
				for _, ln := range g.active {
					if ln.Uncounted {
						ln.used += need
						addPart(l, leasePart{line: ln, count: need})
						break
					}
				}
			}
			return need
		}
	}
	pools := l.device.pools
	if !strict && len(pools) == 0 {
		pools = defaultPoolOnly
	}
	got := int64(0)
	// The first pass keeps to the pools' shares. Placing existing leases
	// again (not strict) may then overfill the device's first pool: a
	// changed model or reservation lets such leases drain rather than
	// revoking them.
	for pass := range 2 {
		if pass == 1 && strict {
			break
		}
		for i, p := range pools {
			if pass == 1 && i > 0 {
				break
			}
			for _, g := range groups {
				q := p
				if s.model != nil && !g.pools[p].named {
					q = 0
				}
				room := g.free() - g.scratch
				if pass == 0 {
					room = min(room, g.pools[q].cap-g.pools[q].used)
				}
				if t := min(room, need-got); t > 0 {
					s.takeCounts(g, l, q, t, commit)
					got += t
					if got == need {
						return got
					}
				}
			}
		}
	}
	odPool := 0
	if len(pools) > 0 {
		odPool = pools[0]
	}
	for _, g := range groups {
		room := g.overdraft - g.overdraftUsed - g.scratchOverdraft
		if t := min(room, need-got); t > 0 {
			s.takeOverdraft(g, l, odPool, t, commit)
			got += t
			if got == need {
				return got
			}
		}
	}
	return got
}

var defaultPoolOnly = []int{0}

func (s *State) takeCounts(g *group, l *lease, pool int, n int64, commit bool) {
	if !commit {
		g.scratch += n
		return
	}
	g.used += n
	g.pools[pool].used += n
	for _, ln := range g.active {
		if ln.Uncounted {
			continue
		}
		if t := min(ln.free(), n); t > 0 {
			ln.used += t
			addPart(l, leasePart{line: ln, pool: pool, count: t})
			n -= t
			if n == 0 {
				return
			}
		}
	}
	panic("core: group free count disagrees with its lines") // the sums are kept together; this is a bug
}

func (s *State) takeOverdraft(g *group, l *lease, pool int, n int64, commit bool) {
	if !commit {
		g.scratchOverdraft += n
		return
	}
	g.overdraftUsed += n
	for _, ln := range g.active {
		if t := min(ln.Overdraft-ln.overdraftUsed, n); t > 0 {
			ln.overdraftUsed += t
			addPart(l, leasePart{line: ln, pool: pool, count: t, overdraft: true})
			n -= t
			if n == 0 {
				return
			}
		}
	}
	panic("core: group overdraft disagrees with its lines")
}

// addPart merges p into the lease's part on the same line and pool, or
// appends it.
func addPart(l *lease, p leasePart) {
	for i := range l.parts {
		q := &l.parts[i]
		if q.line == p.line && q.pool == p.pool && q.overdraft == p.overdraft {
			q.count += p.count
			return
		}
	}
	l.parts = append(l.parts, p)
}

// release frees n of the lease's counts, overdraft first, newest parts
// first. Counts of a metered, non-reusable line held past its undo interval
// are consumed rather than freed.
func (s *State) release(l *lease, n int64) {
	for _, overdraft := range [2]bool{true, false} {
		for i := len(l.parts) - 1; i >= 0 && n > 0; i-- {
			p := &l.parts[i]
			if p.overdraft != overdraft {
				continue
			}
			t := min(p.count, n)
			s.unchargePart(l, p, t)
			p.count -= t
			n -= t
		}
	}
	parts := l.parts[:0]
	for _, p := range l.parts {
		if p.count > 0 {
			parts = append(parts, p)
		}
	}
	clear(l.parts[len(parts):])
	l.parts = parts
	l.count = 0
	for _, p := range l.parts {
		l.count += p.count
	}
}

func (s *State) unchargePart(l *lease, p *leasePart, t int64) {
	ln, g := p.line, p.line.group
	switch {
	case p.overdraft:
		ln.overdraftUsed -= t
		if ln.active {
			g.overdraftUsed -= t
		}
		return
	case ln.Uncounted:
		ln.used -= t
		return
	}
	ln.used -= t
	if ln.active {
		g.used -= t
		g.pools[p.pool].used -= t
	}
	if ln.consumes() && s.now.Sub(l.granted) > ln.UndoInterval {
		ln.consumed += t
		if ln.active {
			g.consumed += t
		}
	}
}

// hello records a device or updates what it says about itself.
func (s *State) hello(c *Hello) (*device, error) {
	d := s.devices[c.Device.ID]
	if d == nil {
		if len(s.devices) >= s.cfg.MaxDevices {
			return nil, fmt.Errorf("%w: the server holds %d devices, its limit", ErrInvalidDevice, len(s.devices))
		}
		d = &device{}
		s.devices[c.Device.ID] = d
	}
	d.info = c.Device
	d.lastSeen = s.now
	s.assignPools(d)
	return d, nil
}

// disconnect frees a device's leases when licensing.releaseOnDisconnect is
// on. The end of a numbered connection frees only the leases no later
// connection of the device has asked for (see Level).
func (s *State) disconnect(c *Disconnect) (Result, error) {
	d := s.devices[c.Device]
	if d == nil {
		return Result{}, fmt.Errorf("%w %s", ErrUnknownDevice, c.Device)
	}
	if c.Conn > d.conn {
		s.noChange = true
		return Result{}, nil
	}
	d.lastSeen = s.now
	if !s.policy.releaseOnDisconnect {
		return Result{}, nil
	}
	if c.Conn != 0 {
		return Result{Changed: s.endLeasesOf(d, c.Conn)}, nil
	}
	return Result{Changed: s.endLeases(d)}, nil
}

// dropDevice forgets a device and frees its counts.
func (s *State) dropDevice(c *DropDevice) (Result, error) {
	if !s.policy.allowDeviceDrop {
		return Result{}, ErrDropNotAllowed
	}
	d := s.devices[c.Device]
	if d == nil {
		return Result{}, fmt.Errorf("%w %s", ErrUnknownDevice, c.Device)
	}
	changed := s.endLeases(d)
	delete(s.devices, c.Device)
	return Result{Changed: changed}, nil
}

func (s *State) endLeases(d *device) []Lease {
	var freed []Lease
	for len(d.leases) > 0 {
		l := d.leases[len(d.leases)-1]
		info := l.info()
		info.Count = 0
		freed = append(freed, info)
		s.endLease(l)
	}
	return freed
}

// assignPools works out which pools a device draws from.
func (s *State) assignPools(d *device) {
	d.pools = d.pools[:0]
	d.modelDeny = false
	if s.model != nil {
		action, _ := s.model.Evaluate(d.modelDevice())
		switch action.Kind {
		case model.Deny:
			d.modelDeny = true
		case model.Use:
			d.pools = append(d.pools, s.model.PoolIndex(action.Pool))
		default:
			d.pools = append(d.pools, 0)
		}
		return
	}
	for _, h := range d.info.HostIDs {
		if p, ok := s.reservedPools[h]; ok {
			d.pools = append(d.pools, p)
			break
		}
	}
	d.pools = append(d.pools, 0)
}

// deviceByID is a lookup that tolerates a non-canonical hostid.
func (s *State) deviceByID(id hostid.HostID) *device {
	if d := s.devices[id]; d != nil {
		return d
	}
	if c, err := hostid.New(id.Value, id.Type); err == nil {
		return s.devices[c]
	}
	return nil
}
