package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// The property tests drive the state with random command sequences over a
// small world (a few features, versions and devices, so that counts run out
// and pools collide) and check after every command that no feature is used
// past its total plus overdraft and that every kept sum agrees with the
// leases. They also check that a snapshot restored mid-way and fed the rest
// of the sequence ends in the same state with the same results.

var (
	propFeatures = []string{"cad", "sim", "viewer"}
	propVersions = []string{"1.0", "1.5", "2.0"}
)

const propDevices = 10

func randomLine(r *rand.Rand, id string, now time.Time) FeatureLine {
	l := FeatureLine{
		ID:      id,
		Name:    propFeatures[r.IntN(len(propFeatures))],
		Version: version.MustParse(propVersions[r.IntN(len(propVersions))]),
		Count:   int64(r.IntN(6)),
	}
	switch r.IntN(8) {
	case 0:
		l.Count, l.Uncounted = 0, true
	case 1:
		l.Metered = true
		l.UndoInterval = time.Duration(r.IntN(30)) * time.Minute
	case 2:
		l.Metered, l.Reusable = true, true
	}
	if !l.Uncounted && r.IntN(3) == 0 {
		l.Overdraft = int64(r.IntN(3))
	}
	if !l.Uncounted && l.Count == 0 && l.Overdraft == 0 {
		l.Count = 1
	}
	if r.IntN(3) == 0 {
		l.Start = now.Add(time.Duration(r.IntN(120)-30) * time.Minute)
	}
	if r.IntN(2) == 0 {
		base := now
		if l.Start.After(now) {
			base = l.Start
		}
		l.Expiry = base.Add(time.Duration(1+r.IntN(300)) * time.Minute)
	}
	return l
}

var propModels = []string{
	`model "m1" {
  partitions { partition "a" { "cad" 1.0 2 "sim" 1.0 50% } partition "b" { "cad" 1.0 remainder } }
  on hostid("02:00:00:00:00:01", ETHERNET) or hostname("host-2") { use "a" }
  on dictionary("site", "b") { use "b" }
  on hosttype(VIRTUAL) { deny }
}`,
	`model "m2" {
  partitions { partition "x" { "viewer" 2.0 30% } }
  on not hosttype(PHYSICAL) { use "x" }
  on any() { accept }
}`,
	`model "m3" { on user("mallory") { deny } }`,
	`model "broken" { partitions { partition "a" { "cad" 1.0 1 } partition "a" { } } }`,
}

// randomCommand returns a command; most are checkouts, as on a real server.
func randomCommand(r *rand.Rand, now time.Time, seq *int) Command {
	dev := func() hostid.HostID { return mac(1 + r.IntN(propDevices)) }
	if r.IntN(8) == 0 {
		return randomAccessCommand(r)
	}
	switch n := r.IntN(100); {
	case n < 50:
		return &Checkout{
			Device: dev(), Feature: propFeatures[r.IntN(len(propFeatures))],
			Version: version.MustParse(propVersions[r.IntN(len(propVersions))]),
			Count:   int64(r.IntN(5)), Borrow: time.Duration(r.IntN(3)) * 40 * time.Minute,
		}
	case n < 58:
		return &Tick{}
	case n < 66:
		n := 1 + r.IntN(propDevices)
		info := DeviceInfo{ID: mac(n), Type: DeviceType(r.IntN(3)), Hostname: fmt.Sprintf("host-%d", r.IntN(4))}
		if r.IntN(3) == 0 {
			info.Attributes = map[string]string{"site": []string{"a", "b"}[r.IntN(2)]}
		}
		if r.IntN(5) == 0 {
			info.User = "mallory"
		}
		if r.IntN(4) == 0 {
			info.HostIDs = []hostid.HostID{mac(n + 100)}
		}
		return &Hello{Device: info}
	case n < 72:
		src := fmt.Sprintf("src%d", r.IntN(3))
		*seq++
		lr := &LoadRights{Source: src, Sequence: uint64(max(1, *seq-r.IntN(2)*3))}
		for i := range 1 + r.IntN(4) {
			lr.Lines = append(lr.Lines, randomLine(r, fmt.Sprintf("%s-%d", src, i), now))
		}
		if r.IntN(6) == 0 {
			lr.Locks = map[string]string{"licensing.releaseOnDisconnect": []string{"true", "false"}[r.IntN(2)]}
		}
		return lr
	case n < 74:
		return &RemoveRights{Source: fmt.Sprintf("src%d", r.IntN(3))}
	case n < 78:
		return &SetModel{Text: propModels[r.IntN(len(propModels))]}
	case n < 80:
		return &DeleteModel{}
	case n < 85:
		g := ReservationGroup{Name: fmt.Sprintf("g%d", r.IntN(3))}
		for range 1 + r.IntN(2) {
			g.Reservations = append(g.Reservations, Reservation{HostID: mac(1 + r.IntN(propDevices+2)), Entries: []ReservationEntry{{
				Feature: propFeatures[r.IntN(len(propFeatures))], Version: version.MustParse(propVersions[r.IntN(len(propVersions))]),
				Count: int64(1 + r.IntN(3)),
			}}})
		}
		return &SetReservations{Groups: []ReservationGroup{g}}
	case n < 87:
		return &DeleteReservations{Names: []string{fmt.Sprintf("g%d", r.IntN(3))}}
	case n < 91:
		return &Disconnect{Device: dev()}
	case n < 93:
		return &DropDevice{Device: dev()}
	default:
		props := []SetProperty{
			{Name: "licensing.releaseOnDisconnect", Value: []string{"true", "false"}[r.IntN(2)]},
			{Name: "server.allowDeviceDrop", Value: []string{"true", "false"}[r.IntN(2)]},
			{Name: "licensing.borrowInterval", Value: []string{"30m", "1h", "2h"}[r.IntN(3)]},
			{Name: "licensing.borrowIntervalMax", Value: []string{"1h", "3h"}[r.IntN(2)]},
		}
		p := props[r.IntN(len(props))]
		return &p
	}
}

var propUsers = []string{"admin", "alice", "bob"}

// randomRoles returns a few roles, sometimes none.
func randomRoles(r *rand.Rand) []Role {
	var roles []Role
	for range r.IntN(3) {
		roles = append(roles, Role(1+r.IntN(int(RoleKeys))))
	}
	return roles
}

// randomAccessCommand returns a command on administrators, tokens, keys or
// the audit log.
func randomAccessCommand(r *rand.Rand) Command {
	user := propUsers[r.IntN(len(propUsers))]
	switch r.IntN(13) {
	case 0:
		return &CreateUser{Name: user, Roles: randomRoles(r), PasswordHash: fmt.Sprintf("hash-%d", r.IntN(5))}
	case 1:
		return &SetUserRoles{Name: user, Roles: randomRoles(r)}
	case 2:
		return &SetPassword{Name: user, PasswordHash: fmt.Sprintf("hash-%d", r.IntN(5)), Revoke: r.IntN(2) == 0}
	case 3:
		return &DeleteUser{Name: user}
	case 4:
		return &Logout{Name: user}
	case 5:
		return &SetTokenKey{Key: bytes.Repeat([]byte{byte(r.IntN(3))}, TokenKeyLen), Replace: r.IntN(2) == 0}
	case 6:
		c := &CreateKeys{KeyType: KeyType(1 + r.IntN(2))}
		for range 1 + r.IntN(2) {
			c.Keys = append(c.Keys, NewKey{ID: fmt.Sprintf("k%d", r.IntN(6)), Secret: propSecret(r)})
		}
		return c
	case 7:
		return &SetKeyActive{ID: fmt.Sprintf("k%d", r.IntN(6)), Active: r.IntN(3) > 0}
	case 8:
		return &SetKeyDescription{ID: fmt.Sprintf("k%d", r.IntN(6)), Description: fmt.Sprintf("batch %d", r.IntN(2))}
	case 9:
		return &DeleteKey{ID: fmt.Sprintf("k%d", r.IntN(6))}
	case 10:
		return &SetClientKey{DER: []byte(fmt.Sprintf("client-key-%d", r.IntN(2)))}
	case 11:
		return &SetProperty{Name: "security.requireOnboarding", Value: []string{"true", "false"}[r.IntN(2)]}
	default:
		n := 1 + r.IntN(propDevices)
		return &Onboard{Device: DeviceInfo{ID: mac(n), Type: DevicePhysical, Hostname: fmt.Sprintf("host-%d", n%4)},
			Secret: propSecret(r), PublicKey: []byte(fmt.Sprintf("device-key-%d", r.IntN(3)))}
	}
}

// propSecret returns one of a few key secrets, so that keys collide.
func propSecret(r *rand.Rand) string { return fmt.Sprintf("secret-%d", r.IntN(8)) }

// randomRequests makes a sequence of requests with a moving clock, from a
// few sessions, with some retries of earlier requests.
func randomRequests(r *rand.Rand, n int) []Request {
	now := t0
	seqs := map[SessionID]uint64{}
	var out []Request
	rightsSeq := 0
	for range n {
		if r.IntN(4) == 0 && len(out) > 0 {
			old := out[r.IntN(len(out))]
			old.At = now
			out = append(out, old) // a retry: must be applied at most once
			continue
		}
		now = now.Add(time.Duration(r.IntN(20)) * time.Minute)
		sess := SessionID(1 + r.IntN(3))
		seqs[sess]++
		c := randomCommand(r, now, &rightsSeq)
		switch c.(type) {
		case *Tick, *Hello, *Checkout, *Disconnect, *Onboard:
		default:
			if r.IntN(2) == 0 {
				c = &Audited{Actor: Actor{User: propUsers[r.IntN(len(propUsers))], Address: "192.0.2.7"}, Command: c}
			}
		}
		out = append(out, Request{ID: RequestID{Session: sess, Seq: seqs[sess]}, At: now, Command: c})
	}
	return out
}

// roundTrip encodes and decodes a request the way the log carries it, so the
// property tests exercise the codec too and every apply gets a fresh command.
func roundTrip(t *testing.T, r Request) Request {
	b, err := EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRequest(b)
	if err != nil {
		// Commands that are invalid on their own never reach the log.
		return Request{}
	}
	return back
}

func TestPropertyNeverOverAllocates(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 40
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		s := New(Config{})
		var backup []byte
		for i, req := range randomRequests(r, 400) {
			// Midway a database backup is taken, and later restored.
			switch i {
			case 150:
				backup, _ = s.Snapshot()
			case 300:
				if _, err := s.Apply(Request{ID: RequestID{Session: 77, Seq: 1}, At: s.Now(), Command: &RestoreBackup{Snapshot: backup}}); err != nil {
					t.Fatalf("seed %d: restore the backup: %v", seed, err)
				}
				if err := s.verify(); err != nil {
					t.Fatalf("seed %d, after restoring the backup: %v", seed, err)
				}
			}
			req = roundTrip(t, req)
			if req.Command == nil {
				continue
			}
			records := s.AuditCount()
			var before KeySummary
			if ob, ok := req.Command.(*Onboard); ok {
				if k := s.keyBySecret[ob.Secret]; k != nil {
					before = k.summary()
				}
			}
			res, err := s.Apply(req)
			if (err != nil || res.Duplicate) && s.AuditCount() != records {
				t.Fatalf("seed %d, request %d (%s): refused or duplicate (%v) but audited", seed, i, req.Command.Type(), err)
			}
			if ob, ok := req.Command.(*Onboard); ok && err == nil && !res.Duplicate {
				// A one-time key onboards one device: a used key succeeds
				// again only for its own device, changing nothing.
				after, _ := s.Key(before.ID)
				switch {
				case res.Onboarded != ob.Device.ID:
					t.Fatalf("seed %d, request %d: onboarded %v, asked %v", seed, i, res.Onboarded, ob.Device.ID)
				case before.Type == KeyOneTime && before.State == KeyUsed && (after.UsedBy != before.UsedBy || s.AuditCount() != records):
					t.Fatalf("seed %d, request %d: used one-time key %s onboarded again: %+v", seed, i, before.ID, after)
				case before.Type == KeyOneTime && after.UsedBy != ob.Device.ID:
					t.Fatalf("seed %d, request %d: key %s used by %v after onboarding %v", seed, i, before.ID, after.UsedBy, ob.Device.ID)
				}
			}
			if err := s.verify(); err != nil {
				t.Fatalf("seed %d, request %d (%s): %v", seed, i, req.Command.Type(), err)
			}
		}
	}
}

func TestPropertySnapshotRestoreReplay(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		reqs := randomRequests(r, 300)
		cut := r.IntN(len(reqs))
		live := New(Config{})
		var restored *State
		for i, req := range reqs {
			if i == cut {
				snap, err := live.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				if restored, err = Restore(Config{}, snap); err != nil {
					t.Fatalf("seed %d: restore at %d: %v", seed, i, err)
				}
				again, _ := restored.Snapshot()
				if !bytes.Equal(snap, again) {
					t.Fatalf("seed %d: snapshot of the restored state differs at %d", seed, i)
				}
			}
			req = roundTrip(t, req)
			if req.Command == nil {
				continue
			}
			res, err := live.Apply(req)
			if restored != nil {
				req2 := roundTrip(t, req)
				res2, err2 := restored.Apply(req2)
				if fmt.Sprint(err) != fmt.Sprint(err2) || !sameJSON(res, res2) {
					t.Fatalf("seed %d, request %d (%s): live %+v %v, restored %+v %v", seed, i, req.Command.Type(), res, err, res2, err2)
				}
				if err := restored.verify(); err != nil {
					t.Fatalf("seed %d, restored, request %d: %v", seed, i, err)
				}
			}
		}
		a, _ := live.Snapshot()
		b, _ := restored.Snapshot()
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: states differ after replay from request %d", seed, cut)
		}
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestRestoreRefusesDamage(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 2))
	h.granted(h.hello(1), "cad", "1.0", 2)
	good := h.snapshot()
	damaged := map[string][]byte{
		"truncated":    good[:len(good)/2],
		"not json":     []byte("hello"),
		"wrong format": bytes.Replace(good, []byte(`"format":1`), []byte(`"format":9`), 1),
		"over-used line": bytes.Replace(bytes.Replace(good, []byte(`"count":2,"granted"`), []byte(`"count":3,"granted"`), 1),
			[]byte(`"pool":0,"count":2}`), []byte(`"pool":0,"count":3}`), 1),
		"unknown line":    bytes.Replace(good, []byte(`{"line":"l"`), []byte(`{"line":"zz"`), 1),
		"unknown field":   bytes.Replace(good, []byte(`"format":1`), []byte(`"format":1,"extra":true`), 1),
		"trailing data":   append(append([]byte{}, good...), []byte(" {}")...),
		"bad pool":        bytes.Replace(good, []byte(`"pool":0`), []byte(`"pool":7`), 1),
		"negative count":  bytes.Replace(good, []byte(`"version":"1.0","count":2`), []byte(`"version":"1.0","count":-2`), 1),
		"orphan line src": bytes.Replace(good, []byte(`"lineIds":["l"]`), []byte(`"lineIds":[]`), 1),
	}
	for name, data := range damaged {
		if bytes.Equal(data, good) {
			t.Fatalf("%s: the damage did not apply; fix the test", name)
		}
		if _, err := Restore(Config{}, data); err == nil {
			t.Errorf("%s: restored without error", name)
		}
	}
	if _, err := Restore(Config{}, good); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
}
