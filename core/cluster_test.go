package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// testCA returns the PEM of a made-up cluster CA; core never parses it.
func testCA(n int) (certPEM, keyPEM []byte) {
	return []byte(fmt.Sprintf("-----BEGIN CERTIFICATE-----\nca-%d\n-----END CERTIFICATE-----\n", n)),
		[]byte(fmt.Sprintf("-----BEGIN PRIVATE KEY-----\nca-key-%d\n-----END PRIVATE KEY-----\n", n))
}

func setCA(n int) *SetClusterCA {
	cert, key := testCA(n)
	return &SetClusterCA{CertPEM: cert, KeyPEM: key}
}

func verifier(n int) []byte { return bytes.Repeat([]byte{byte(n)}, JoinTokenVerifierLen) }

// joinToken makes a token whose verifier is made from its ID's length and
// last byte, expiring d after the harness's clock.
func (h *harness) joinToken(id string, d time.Duration) *CreateJoinToken {
	return &CreateJoinToken{ID: id, Verifier: verifier(len(id) + int(id[len(id)-1])), Expires: h.now.Add(d)}
}

func tokenIDs(h *harness) string {
	var ids []string
	for _, t := range h.s.JoinTokens() {
		ids = append(ids, t.ID)
	}
	return strings.Join(ids, ",")
}

func TestClusterCAFirstWriterWins(t *testing.T) {
	h := withAdmin(t)
	if _, _, ok := h.s.ClusterCA(); ok {
		t.Fatal("a new state has a cluster CA")
	}
	cert, key := testCA(1)
	for name, c := range map[string]*SetClusterCA{
		"no certificate":  {KeyPEM: key},
		"no key":          {CertPEM: cert},
		"big certificate": {CertPEM: make([]byte, MaxClusterCALen+1), KeyPEM: key},
		"big key":         {CertPEM: cert, KeyPEM: make([]byte, MaxClusterCALen+1)},
	} {
		t.Run(name, func(t *testing.T) {
			h.t = t
			h.refuse(c, ErrInvalidClusterCA)
		})
	}
	h.t = t
	if err := (&SetClusterCA{CertPEM: make([]byte, MaxClusterCALen), KeyPEM: key}).validate(); err != nil {
		t.Fatalf("a certificate of %d bytes: %v", MaxClusterCALen, err)
	}

	// The bootstrapping node sets it; the system writes no audit record.
	h.apply(setCA(1))
	h.apply(audited(setCA(1))) // the same again changes nothing
	h.refuse(setCA(2), ErrClusterCAExists)
	other := setCA(1)
	other.KeyPEM = append(other.KeyPEM, '\n')
	h.refuse(audited(other), ErrClusterCAExists)
	if h.s.AuditCount() != 0 {
		t.Fatalf("audit %+v", h.s.Audit(0, 0))
	}
	gotCert, gotKey, ok := h.s.ClusterCA()
	if !ok || !bytes.Equal(gotCert, cert) || !bytes.Equal(gotKey, key) {
		t.Fatalf("CA %q %q %v", gotCert, gotKey, ok)
	}
	gotCert[0], gotKey[0] = 'x', 'x'
	if c, k, _ := h.s.ClusterCA(); c[0] != '-' || k[0] != '-' {
		t.Fatal("ClusterCA returned the state's own slices")
	}

	// Wrapped in Audited, setting it records the certificate's digest and
	// never the key.
	h2 := withAdmin(t)
	h2.apply(audited(setCA(3)))
	recs := h2.s.Audit(0, 0)
	if len(recs) != 1 || recs[0].Action != "setClusterCa" || !strings.HasPrefix(recs[0].Detail, "set the cluster CA (certificate SHA-256 ") {
		t.Fatalf("records %+v", recs)
	}
	if b, _ := json.Marshal(recs); bytes.Contains(b, []byte("ca-key-3")) {
		t.Fatalf("audit log shows the CA key: %s", b)
	}
}

func TestJoinTokenCommandsValidate(t *testing.T) {
	good := func(f func(*CreateJoinToken)) *CreateJoinToken {
		c := &CreateJoinToken{ID: "0123456789abcdef", Verifier: verifier(1), Expires: t0.Add(time.Hour)}
		f(c)
		return c
	}
	tests := []struct {
		name string
		c    Command
	}{
		{"empty id", good(func(c *CreateJoinToken) { c.ID = "" })},
		{"upper-case id", good(func(c *CreateJoinToken) { c.ID = "ABC" })},
		{"id with dash", good(func(c *CreateJoinToken) { c.ID = "a-b" })},
		{"long id", good(func(c *CreateJoinToken) { c.ID = strings.Repeat("a", MaxJoinTokenIDLen+1) })},
		{"no verifier", good(func(c *CreateJoinToken) { c.Verifier = nil })},
		{"short verifier", good(func(c *CreateJoinToken) { c.Verifier = c.Verifier[1:] })},
		{"long verifier", good(func(c *CreateJoinToken) { c.Verifier = append(c.Verifier, 0) })},
		{"never expires", good(func(c *CreateJoinToken) { c.Expires = time.Time{} })},
		{"long description", good(func(c *CreateJoinToken) { c.Description = strings.Repeat("d", MaxJoinTokenDescriptionLen+1) })},
		{"control in description", good(func(c *CreateJoinToken) { c.Description = "a\nb" })},
		{"delete bad id", &DeleteJoinToken{ID: "x/y"}},
		{"use bad id", &UseJoinToken{ID: "", Node: "node-1"}},
		{"use no node", &UseJoinToken{ID: "j1"}},
		{"use node with space", &UseJoinToken{ID: "j1", Node: "node 1"}},
		{"use node with slash", &UseJoinToken{ID: "j1", Node: "node/1"}},
		{"use long node", &UseJoinToken{ID: "j1", Node: strings.Repeat("n", MaxNodeIDLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.validate(); !errors.Is(err, ErrInvalidJoinToken) {
				t.Fatalf("error %v, want %v", err, ErrInvalidJoinToken)
			}
		})
	}
	for _, c := range []Command{
		good(func(c *CreateJoinToken) { c.ID = strings.Repeat("z9", MaxJoinTokenIDLen/2) }),
		good(func(c *CreateJoinToken) { c.Description = strings.Repeat("d", MaxJoinTokenDescriptionLen) }),
		&UseJoinToken{ID: "j1", Node: "Node_1.example-" + strings.Repeat("n", MaxNodeIDLen-15)},
		&DeleteJoinToken{ID: "j1"},
	} {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := audited(&UseJoinToken{ID: "j1", Node: "node-1"}).validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("audited useJoinToken: %v", err)
	}
	local := good(func(c *CreateJoinToken) { c.Expires = time.Date(2026, 1, 5, 12, 0, 0, 0, time.FixedZone("IST", 19800)) })
	if err := local.validate(); err != nil || local.Expires.Location() != time.UTC {
		t.Fatalf("expiry not put in UTC: %v %v", local.Expires, err)
	}
}

func TestJoinTokenLifecycle(t *testing.T) {
	h := withAdmin(t)
	j1 := h.joinToken("j1", time.Hour)
	j1.Description = "for node-2"
	h.apply(audited(j1))
	h.advance(time.Minute)
	h.apply(audited(h.joinToken("j2", 30*time.Minute)))
	h.apply(audited(h.joinToken("a0", 30*time.Minute)))
	if got := tokenIDs(h); got != "j1,a0,j2" {
		t.Fatalf("tokens %s, want by creation then ID", got)
	}

	// Bad input changes nothing and writes no audit record (refuse
	// compares snapshots, which hold the audit log).
	records := h.s.AuditCount()
	h.refuse(audited(h.joinToken("j1", time.Hour)), ErrJoinTokenExists)
	h.refuse(audited(h.joinToken("past", -time.Second)), ErrInvalidJoinToken)
	h.refuse(audited(h.joinToken("now", 0)), ErrInvalidJoinToken)
	h.refuse(audited(h.joinToken("long", MaxJoinTokenLifetime+time.Nanosecond)), ErrInvalidJoinToken)
	h.refuse(audited(&DeleteJoinToken{ID: "nope"}), ErrUnknownJoinToken)
	h.refuse(&UseJoinToken{ID: "nope", Node: "node-2"}, ErrUnknownJoinToken)
	if h.s.AuditCount() != records {
		t.Fatalf("refused commands wrote %d records", h.s.AuditCount()-records)
	}
	h.apply(audited(h.joinToken("week", MaxJoinTokenLifetime)))

	v, ok := h.s.JoinTokenVerifier("j1")
	if !ok || !bytes.Equal(v, j1.Verifier) {
		t.Fatalf("verifier %x %v", v, ok)
	}
	v[0]++
	if again, _ := h.s.JoinTokenVerifier("j1"); !bytes.Equal(again, j1.Verifier) {
		t.Fatal("JoinTokenVerifier returned the state's own slice")
	}
	if _, ok := h.s.JoinTokenVerifier("nope"); ok {
		t.Fatal("a verifier for an unknown token")
	}

	// A token admits one node; the same node may repeat its join.
	h.advance(time.Minute)
	h.apply(&UseJoinToken{ID: "j1", Node: "node-2"})
	records = h.s.AuditCount()
	h.apply(&UseJoinToken{ID: "j1", Node: "node-2"})
	if h.s.AuditCount() != records {
		t.Fatal("a repeated join wrote a record")
	}
	h.refuse(&UseJoinToken{ID: "j1", Node: "node-3"}, ErrJoinTokenUsed)
	rec := h.s.Audit(0, 0)[h.s.AuditCount()-1]
	if rec.User != "node:node-2" || rec.Action != "useJoinToken" || rec.Detail != "node node-2 joined with join token j1" ||
		!rec.At.Equal(h.now) || rec.Address != "" {
		t.Fatalf("record %+v", rec)
	}
	want := JoinTokenSummary{ID: "j1", Description: "for node-2", Created: t0, Expires: t0.Add(time.Hour), UsedBy: "node-2", UsedAt: h.now}
	if got := h.s.JoinTokens()[0]; got != want {
		t.Fatalf("j1 %+v, want %+v", got, want)
	}

	// Past its expiry a token admits nobody; the view marks the unused.
	h.tick(30 * time.Minute)
	h.refuse(&UseJoinToken{ID: "j2", Node: "node-3"}, ErrJoinTokenExpired)
	expired := map[string]bool{}
	for _, tok := range h.s.JoinTokens() {
		expired[tok.ID] = tok.Expired
	}
	if !expired["j2"] || !expired["a0"] || expired["j1"] || expired["week"] {
		t.Fatalf("expired %v", expired)
	}
	h.tick(time.Hour)
	h.refuse(&UseJoinToken{ID: "j1", Node: "node-2"}, ErrJoinTokenExpired)
	h.apply(&UseJoinToken{ID: "week", Node: "node-4"})

	h.apply(audited(&DeleteJoinToken{ID: "j2"}))
	h.apply(audited(&DeleteJoinToken{ID: "j1"})) // a used token may go too
	if got := tokenIDs(h); got != "a0,week" {
		t.Fatalf("after deletes: %s", got)
	}
	h.refuse(&UseJoinToken{ID: "j2", Node: "node-3"}, ErrUnknownJoinToken)

	var details []string
	for _, r := range h.s.Audit(0, 0) {
		details = append(details, r.Detail)
	}
	wantDetails := []string{
		"created join token j1 expiring 2026-01-05T10:00:00Z",
		"created join token j2 expiring 2026-01-05T09:31:00Z",
		"created join token a0 expiring 2026-01-05T09:31:00Z",
		"created join token week expiring 2026-01-12T09:01:00Z",
		"node node-2 joined with join token j1",
		"node node-4 joined with join token week",
		"deleted join token j2",
		"deleted join token j1",
	}
	if strings.Join(details, "\n") != strings.Join(wantDetails, "\n") {
		t.Fatalf("audit details:\n%s", strings.Join(details, "\n"))
	}
	b, _ := json.Marshal(h.s.JoinTokens())
	if bytes.Contains(b, []byte("erifier")) || bytes.Contains(b, []byte(b64(verifier(len("a0")+'0')))) {
		t.Fatalf("the view shows a verifier: %s", b)
	}
}

func TestJoinTokenLimit(t *testing.T) {
	h := withAdmin(t)
	for i := range MaxJoinTokens {
		h.apply(h.joinToken(fmt.Sprintf("t%d", i), time.Hour))
	}
	h.refuse(h.joinToken("more", time.Hour), ErrInvalidJoinToken)
	h.apply(&UseJoinToken{ID: "t7", Node: "node-7"})
	h.refuse(h.joinToken("more", time.Hour), ErrInvalidJoinToken) // used tokens count
	h.apply(&DeleteJoinToken{ID: "t7"})
	h.apply(h.joinToken("more", time.Hour))
	if n := len(h.s.JoinTokens()); n != MaxJoinTokens {
		t.Fatalf("%d tokens", n)
	}
}

// TestJoinTokensRace has 40 nodes race for 10 tokens, four for each, in a
// random order, as members admitting them would propose: exactly one node
// joins with each token, and the audit log shows each use once.
func TestJoinTokensRace(t *testing.T) {
	h := withAdmin(t)
	for i := range 10 {
		h.apply(h.joinToken(fmt.Sprintf("t%d", i), time.Hour))
	}
	r := rand.New(rand.NewPCG(5, 5))
	joined := map[string]string{}
	for _, n := range r.Perm(40) {
		id, node := fmt.Sprintf("t%d", n%10), fmt.Sprintf("node-%d", n)
		_, err := h.s.Apply(h.request(&UseJoinToken{ID: id, Node: node}))
		switch {
		case err == nil:
			if prev, dup := joined[id]; dup {
				t.Fatalf("%s admitted %s and %s", id, prev, node)
			}
			joined[id] = node
		case !errors.Is(err, ErrJoinTokenUsed):
			t.Fatalf("%s with %s: %v", node, id, err)
		}
	}
	records := map[string]int{}
	for _, rec := range h.s.Audit(0, 0) {
		records[rec.Action+": "+rec.Detail]++
	}
	for _, tok := range h.s.JoinTokens() {
		detail := fmt.Sprintf("useJoinToken: node %s joined with join token %s", tok.UsedBy, tok.ID)
		if tok.UsedBy == "" || joined[tok.ID] != tok.UsedBy || records[detail] != 1 {
			t.Fatalf("token %+v, joined %q, %d records", tok, joined[tok.ID], records[detail])
		}
	}
	if len(joined) != 10 || h.s.AuditCount() != 10 {
		t.Fatalf("%d joined, %d records", len(joined), h.s.AuditCount())
	}
}

// clusterState is a state with a CA and a used, an unused and an expired
// join token.
func clusterState(t *testing.T) *harness {
	h := withAdmin(t)
	h.apply(setCA(1))
	h.apply(audited(h.joinToken("j1", time.Hour)))
	h.advance(time.Minute)
	used := h.joinToken("j2", 3*time.Hour)
	used.Description = "node two"
	h.apply(audited(used))
	h.apply(audited(h.joinToken("j3", 2*time.Hour)))
	h.advance(29 * time.Minute)
	h.apply(&UseJoinToken{ID: "j2", Node: "node-2"})
	h.tick(time.Hour) // j1 expires at 10:00
	return h
}

func TestClusterSnapshot(t *testing.T) {
	h := clusterState(t)
	good, back := h.restoredCopy()
	if !sameJSON(back.JoinTokens(), h.s.JoinTokens()) {
		t.Fatalf("tokens %+v, want %+v", back.JoinTokens(), h.s.JoinTokens())
	}
	if v, _ := back.JoinTokenVerifier("j3"); !bytes.Equal(v, verifier(2+'3')) {
		t.Fatal("verifier lost")
	}
	if cert, key, ok := back.ClusterCA(); !ok || !bytes.Equal(cert, setCA(1).CertPEM) || !bytes.Equal(key, setCA(1).KeyPEM) {
		t.Fatal("CA lost")
	}
	// The restored state still holds each token to its one node.
	if _, err := back.Apply(Request{ID: RequestID{Session: 9, Seq: 1}, At: h.now, Command: &UseJoinToken{ID: "j2", Node: "node-5"}}); !errors.Is(err, ErrJoinTokenUsed) {
		t.Fatalf("used token after restore: %v", err)
	}
	if _, err := back.Apply(Request{ID: RequestID{Session: 9, Seq: 2}, At: h.now, Command: setCA(2)}); !errors.Is(err, ErrClusterCAExists) {
		t.Fatalf("another CA after restore: %v", err)
	}

	cert := b64(setCA(1).CertPEM)
	damaged := map[string][]byte{
		"token id twice":    bytes.Replace(good, []byte(`"id":"j3"`), []byte(`"id":"j2"`), 1),
		"bad token id":      bytes.Replace(good, []byte(`"id":"j3"`), []byte(`"id":"J3"`), 1),
		"short verifier":    bytes.Replace(good, []byte(b64(verifier(2+'3'))), []byte(b64(verifier(2 + '3')[1:])), 1),
		"used without time": bytes.Replace(good, []byte(`,"usedAt":"2026-01-05T09:30:00Z"`), nil, 1),
		"time without user": bytes.Replace(good, []byte(`,"usedBy":"node-2"`), nil, 1),
		"bad user":          bytes.Replace(good, []byte(`"usedBy":"node-2"`), []byte(`"usedBy":"node 2"`), 1),
		"used after expiry": bytes.Replace(good, []byte(`"usedAt":"2026-01-05T09:30:00Z"`), []byte(`"usedAt":"2026-01-05T12:01:00Z"`), 1),
		"used before made":  bytes.Replace(good, []byte(`"usedAt":"2026-01-05T09:30:00Z"`), []byte(`"usedAt":"2026-01-05T09:00:00Z"`), 1),
		"too long a life":   bytes.Replace(good, []byte(`"expires":"2026-01-05T11:01:00Z"`), []byte(`"expires":"2026-01-15T11:01:00Z"`), 1),
		"expires when made": bytes.Replace(good, []byte(`"expires":"2026-01-05T11:01:00Z"`), []byte(`"expires":"2026-01-05T09:01:00Z"`), 1),
		"made after now":    bytes.Replace(good, []byte(`"created":"2026-01-05T09:01:00Z","expires":"2026-01-05T11:01:00Z"`), []byte(`"created":"2026-01-05T11:00:00Z","expires":"2026-01-05T11:01:00Z"`), 1),
		"empty CA":          bytes.Replace(good, []byte(`"certPem":"`+cert+`"`), []byte(`"certPem":""`), 1),
		"no CA key":         bytes.Replace(good, []byte(`,"keyPem":"`+b64(setCA(1).KeyPEM)+`"`), nil, 1),
	}
	refuseRestores(t, good, damaged)

	// A state without cluster trust snapshots as it did before there was any.
	if plain := withAdmin(t).snapshot(); bytes.Contains(plain, []byte("clusterCa")) || bytes.Contains(plain, []byte("joinTokens")) {
		t.Fatalf("empty cluster trust in the snapshot: %s", plain)
	}
}

func TestRestoreBackupKeepsClusterTrust(t *testing.T) {
	h := clusterState(t)
	backup := h.snapshot()
	// Afterwards: a token used, another deleted, one more made.
	h.apply(&UseJoinToken{ID: "j3", Node: "node-3"})
	h.apply(&DeleteJoinToken{ID: "j1"})
	h.apply(h.joinToken("j4", time.Hour))
	want := h.s.JoinTokens()

	// A backup of this cluster, and one of another cluster with its own CA
	// and tokens, bring back neither: the used token stays used.
	other := withAdmin(t)
	other.apply(setCA(2))
	other.apply(other.joinToken("x1", time.Hour))
	for _, b := range [][]byte{backup, other.snapshot()} {
		h.apply(audited(&RestoreBackup{Snapshot: b}))
		if cert, _, _ := h.s.ClusterCA(); !bytes.Equal(cert, setCA(1).CertPEM) {
			t.Fatalf("a database restore changed the CA to %q", cert)
		}
		if got := h.s.JoinTokens(); !sameJSON(got, want) {
			t.Fatalf("after a database restore: %+v, want %+v", got, want)
		}
		h.refuse(&UseJoinToken{ID: "j3", Node: "node-9"}, ErrJoinTokenUsed)
	}
	// A cluster without trust restoring a backup that has some stays
	// without.
	bare := withAdmin(t)
	bare.apply(&RestoreBackup{Snapshot: backup})
	if _, _, ok := bare.s.ClusterCA(); ok || len(bare.s.JoinTokens()) != 0 {
		t.Fatalf("trust came from a backup: %+v", bare.s.JoinTokens())
	}
}

// restoredCopy returns the state's snapshot and the state restored from
// it, checking that the copy snapshots to the same bytes.
func (h *harness) restoredCopy() ([]byte, *State) {
	h.t.Helper()
	snap := h.snapshot()
	back, err := Restore(Config{}, snap)
	if err != nil {
		h.t.Fatal(err)
	}
	if again, _ := back.Snapshot(); !bytes.Equal(again, snap) {
		h.t.Fatal("the snapshot of the restored state differs")
	}
	return snap, back
}

// refuseRestores checks that each damaged copy of a good snapshot is
// refused with ErrInvalidSnapshot.
func refuseRestores(t *testing.T, good []byte, damaged map[string][]byte) {
	t.Helper()
	for name, data := range damaged {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(data, good) {
				t.Fatal("the damage did not apply; fix the test")
			}
			if _, err := Restore(Config{}, data); !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("restored with %v", err)
			}
		})
	}
}
