package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// t0 is the clock every test starts from.
var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// harness applies commands to a State with a test clock and one session.
type harness struct {
	t   testing.TB
	s   *State
	now time.Time
	seq uint64
	// unchecked skips verify after each command.
	unchecked bool
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, s: New(Config{}), now: t0}
}

func (h *harness) request(c Command) Request {
	h.seq++
	return Request{ID: RequestID{Session: 1, Seq: h.seq}, At: h.now, Command: c}
}

// apply applies c and fails the test if it is refused.
func (h *harness) apply(c Command) Result {
	h.t.Helper()
	res, err := h.s.Apply(h.request(c))
	if err != nil {
		h.t.Fatalf("%s refused: %v", c.Type(), err)
	}
	if h.unchecked {
		return res
	}
	if err := h.s.verify(); err != nil {
		h.t.Fatalf("after %s: %v", c.Type(), err)
	}
	return res
}

// refuse applies c, expects an error wrapping want, and checks that the state
// did not change.
func (h *harness) refuse(c Command, want error) error {
	h.t.Helper()
	before := h.snapshot()
	_, err := h.s.Apply(h.request(c))
	if !errors.Is(err, want) {
		h.t.Fatalf("%s: error %v, want %v", c.Type(), err, want)
	}
	if after := h.snapshot(); !bytes.Equal(before, after) {
		h.t.Fatalf("%s was refused but changed the state", c.Type())
	}
	return err
}

func (h *harness) snapshot() []byte {
	h.t.Helper()
	b, err := h.s.Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

func (h *harness) tick(d time.Duration) Result {
	h.t.Helper()
	h.advance(d)
	return h.apply(&Tick{})
}

func (h *harness) rights(source string, seq uint64, lines ...FeatureLine) Result {
	h.t.Helper()
	return h.apply(&LoadRights{Source: source, Sequence: seq, Lines: lines})
}

// hello registers a device with an ETHERNET id made from n.
func (h *harness) hello(n int, opts ...func(*DeviceInfo)) hostid.HostID {
	h.t.Helper()
	id := mac(n)
	info := DeviceInfo{ID: id, Type: DevicePhysical, Hostname: fmt.Sprintf("host-%d", n)}
	for _, o := range opts {
		o(&info)
	}
	h.apply(&Hello{Device: info})
	return id
}

func (h *harness) checkout(dev hostid.HostID, feature, ver string, count int64) Result {
	h.t.Helper()
	return h.apply(&Checkout{Device: dev, Feature: feature, Version: version.MustParse(ver), Count: count})
}

// granted checks out and requires the full count.
func (h *harness) granted(dev hostid.HostID, feature, ver string, count int64) Grant {
	h.t.Helper()
	res := h.checkout(dev, feature, ver, count)
	if res.Denied != NotDenied || res.Grant.Count != count {
		h.t.Fatalf("checkout %s %s %d by %s: got %d, denied %q", feature, ver, count, dev.Value, res.Grant.Count, res.Denied)
	}
	return res.Grant
}

// denied checks out and requires the given denial.
func (h *harness) denied(dev hostid.HostID, feature, ver string, count int64, want DenialReason) {
	h.t.Helper()
	res := h.checkout(dev, feature, ver, count)
	if res.Denied != want {
		h.t.Fatalf("checkout %s %s %d by %s: denied %q, want %q (holds %d)", feature, ver, count, dev.Value, res.Denied, want, res.Grant.Count)
	}
}

func (h *harness) feature(name, ver string) FeatureSummary {
	h.t.Helper()
	d, err := h.s.FeatureDetails(name, version.MustParse(ver))
	if err != nil {
		h.t.Fatal(err)
	}
	return d.FeatureSummary
}

func mac(n int) hostid.HostID {
	return hostid.HostID{Value: fmt.Sprintf("02:00:00:00:%02x:%02x", (n>>8)&0xff, n&0xff), Type: hostid.Ethernet}
}

func fline(id, name, ver string, count int64) FeatureLine {
	return FeatureLine{ID: id, Name: name, Version: version.MustParse(ver), Count: count}
}

// verify recomputes every derived sum from the leases and lines and
// compares it with the kept one, and checks the licensing invariants.
func (s *State) verify() error {
	type acct struct{ used, od int64 }
	lineUse := map[*line]*acct{}
	poolUse := map[*group][]int64{}
	var leases int
	for _, d := range s.devices {
		for _, l := range d.leases {
			leases++
			if l.device != d {
				return fmt.Errorf("lease of %s points at another device", d.info.ID)
			}
			if !l.expiry.After(s.now) {
				return fmt.Errorf("lease of %s on %s expired at %s but is still held at %s", d.info.ID, l.feature, l.expiry, s.now)
			}
			var sum int64
			for _, p := range l.parts {
				if p.count <= 0 {
					return fmt.Errorf("lease part with count %d", p.count)
				}
				if !p.line.active {
					return fmt.Errorf("lease of %s draws on inactive line %s", d.info.ID, p.line.ID)
				}
				if s.lines[p.line.ID] != p.line {
					return fmt.Errorf("lease of %s draws on a line no longer held", d.info.ID)
				}
				if !p.line.Expiry.IsZero() && l.expiry.After(p.line.Expiry) {
					return fmt.Errorf("lease outlives its line %s", p.line.ID)
				}
				a := lineUse[p.line]
				if a == nil {
					a = &acct{}
					lineUse[p.line] = a
				}
				sum += p.count
				if p.overdraft {
					a.od += p.count
					continue
				}
				a.used += p.count
				if !p.line.Uncounted {
					g := p.line.group
					if poolUse[g] == nil {
						poolUse[g] = make([]int64, len(g.pools))
					}
					poolUse[g][p.pool] += p.count
				}
			}
			if sum != l.count || sum == 0 {
				return fmt.Errorf("lease of %s on %s counts %d, parts %d", d.info.ID, l.feature, l.count, sum)
			}
		}
	}
	if leases != len(s.expiry) {
		return fmt.Errorf("%d leases but %d in the expiry heap", leases, len(s.expiry))
	}
	for i, l := range s.expiry {
		if l.heapIdx != i {
			return fmt.Errorf("heap index %d of lease at %d", l.heapIdx, i)
		}
		if i > 0 && s.expiry.less(i, (i-1)/2) {
			return fmt.Errorf("expiry heap out of order at %d", i)
		}
	}
	for _, f := range s.families {
		for _, g := range f.groups {
			var used, od, consumed, total, overdraft int64
			for _, l := range g.lines {
				a := lineUse[l]
				if a == nil {
					a = &acct{}
				}
				if a.used != l.used || a.od != l.overdraftUsed {
					return fmt.Errorf("line %s keeps used %d/%d, leases say %d/%d", l.ID, l.used, l.overdraftUsed, a.used, a.od)
				}
				if !l.active {
					continue
				}
				if !l.Uncounted {
					// The licensing invariant: never more than count plus overdraft.
					if l.used+l.consumed > l.Count {
						return fmt.Errorf("line %s used %d+%d consumed of %d", l.ID, l.used, l.consumed, l.Count)
					}
					used += l.used
				}
				if l.overdraftUsed > l.Overdraft {
					return fmt.Errorf("line %s overdraft %d of %d", l.ID, l.overdraftUsed, l.Overdraft)
				}
				od += l.overdraftUsed
				consumed += l.consumed
				total += l.Count
				overdraft += l.Overdraft
			}
			if used != g.used || od != g.overdraftUsed || consumed != g.consumed || total != g.total || overdraft != g.overdraft {
				return fmt.Errorf("group %s %s sums differ from its lines", g.name, g.version)
			}
			if g.used+g.consumed > g.total || g.overdraftUsed > g.overdraft {
				return fmt.Errorf("group %s %s used %d+%d of %d, overdraft %d of %d", g.name, g.version, g.used, g.consumed, g.total, g.overdraftUsed, g.overdraft)
			}
			var caps int64
			for i, p := range g.pools {
				want := int64(0)
				if pu := poolUse[g]; pu != nil {
					want = pu[i]
				}
				if p.used != want {
					return fmt.Errorf("group %s %s pool %d used %d, leases say %d", g.name, g.version, i, p.used, want)
				}
				if p.cap < 0 {
					return fmt.Errorf("group %s %s pool %d has cap %d", g.name, g.version, i, p.cap)
				}
				caps += p.cap
			}
			if !g.uncounted && caps != g.total {
				return fmt.Errorf("group %s %s pool caps add to %d of %d", g.name, g.version, caps, g.total)
			}
		}
	}
	return s.verifyAccess()
}

// verifyAccess checks the rules of administrators, keys and the audit log:
// users, once there are any, include an administrator, keys are indexed by
// their secrets, a one-time key is used at most once, and the audit chain
// verifies.
func (s *State) verifyAccess() error {
	if len(s.users) > 0 && s.admins() == 0 {
		return fmt.Errorf("%d users and none holds ADMIN", len(s.users))
	}
	for name, u := range s.users {
		if name != u.name || len(u.roles) == 0 || !slices.IsSorted(u.roles) {
			return fmt.Errorf("user %q is malformed: %+v", name, u)
		}
	}
	if len(s.tokenKey) != 0 && len(s.tokenKey) != TokenKeyLen {
		return fmt.Errorf("token key of %d bytes", len(s.tokenKey))
	}
	if len(s.keyBySecret) != len(s.keys) {
		return fmt.Errorf("%d keys but %d secrets", len(s.keys), len(s.keyBySecret))
	}
	for id, k := range s.keys {
		if k.id != id || s.keyBySecret[k.secret] != k {
			return fmt.Errorf("key %s is not indexed by its secret", id)
		}
		// A one-time key is used by at most one device.
		if k.typ == KeyOneTime && k.uses > 1 {
			return fmt.Errorf("one-time key %s used %d times", id, k.uses)
		}
		if (k.uses > 0) != (k.usedBy != hostid.HostID{}) {
			return fmt.Errorf("key %s has %d uses and user %v", id, k.uses, k.usedBy)
		}
	}
	for id, d := range s.devices {
		if d.credential != nil && (len(d.credential) == 0 || len(d.credential) > MaxDevicePublicKey) {
			return fmt.Errorf("device %s has a credential of %d bytes", id, len(d.credential))
		}
	}
	return s.VerifyAudit()
}
