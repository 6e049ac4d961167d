package discovery

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestVerifyOffer(t *testing.T) {
	id, rogue := newIdentity(t), newIdentity(t)
	nonce := Nonce{9, 9, 9}
	base := Packet{Nonce: nonce, Endpoints: testInfo("node-a", "node-a")().Endpoints, Cluster: "c", Leader: "node-a",
		NodeID: "node-a", Fingerprint: id.fp, Certificate: id.cert, Timestamp: testNow}
	sign := func(p Packet, by identity) []byte {
		b, err := SignOffer(p, by.key, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	with := func(f func(*Packet)) Packet { p := base; f(&p); return p }
	flipped := sign(base, id)
	flipped[len(flipped)-5] ^= 0x40
	policy := VerifyPolicy{Nonce: nonce, Now: testNow, MaxSkew: time.Minute}
	pinned := policy
	pinned.Pinned = id.fp
	pinnedRogue := policy
	pinnedRogue.Pinned = rogue.fp

	cases := []struct {
		name   string
		b      []byte
		policy VerifyPolicy
		want   error
	}{
		{"genuine", sign(base, id), policy, nil},
		{"genuine pinned", sign(base, id), pinned, nil},
		{"clock a little ahead", sign(with(func(p *Packet) { p.Timestamp = testNow.Add(59 * time.Second) }), id), policy, nil},
		{"signature bit flipped", flipped, policy, ErrBadSignature},
		{"signed by another key", sign(base, rogue), policy, ErrBadSignature},
		{"another nonce (replay)", sign(with(func(p *Packet) { p.Nonce = Nonce{1} }), id), policy, ErrNonce},
		{"stale", sign(with(func(p *Packet) { p.Timestamp = testNow.Add(-2 * time.Minute) }), id), policy, ErrStale},
		{"from the future", sign(with(func(p *Packet) { p.Timestamp = testNow.Add(2 * time.Minute) }), id), policy, ErrStale},
		{"fingerprint not of the certificate", sign(with(func(p *Packet) { p.Certificate = rogue.cert }), rogue), policy, ErrFingerprint},
		{"rogue with its own identity, pinned", sign(with(func(p *Packet) { p.Certificate, p.Fingerprint = rogue.cert, rogue.fp }), rogue), pinned, ErrFingerprint},
		{"rogue with its own identity, unpinned", sign(with(func(p *Packet) { p.Certificate, p.Fingerprint = rogue.cert, rogue.fp }), rogue), policy, nil},
		{"genuine, pinned to another", sign(base, id), pinnedRogue, ErrFingerprint},
		{"not a certificate", sign(with(func(p *Packet) { p.Certificate = []byte("junk"); p.Fingerprint = sha(p.Certificate) }), id), policy, ErrBadCertificate},
		{"not an offer", mustRequest(t, Packet{Type: TypePing, Nonce: nonce}), policy, ErrMalformed},
		{"truncated", sign(base, id)[:100], policy, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := VerifyOffer(c.b, c.policy)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("VerifyOffer = %v, want %v", err, c.want)
			}
			if err == nil && (o.NodeID != "node-a" || len(o.Endpoints) != 3) {
				t.Fatalf("verified offer %+v", o)
			}
		})
	}
}

func TestOfferURLsLeaderFirst(t *testing.T) {
	o := Offer{NodeID: "node-b", Leader: "node-c", Endpoints: testInfo("", "")().Endpoints}
	got := o.URLs()
	want := []string{"wss://10.0.0.3:8443/ws/device", "wss://10.0.0.2:8443/ws/device", "wss://10.0.0.1:8443/ws/device"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("URLs = %v, want %v", got, want)
		}
	}
	if o.IsLeader() || !(Offer{NodeID: "x", Leader: "x"}).IsLeader() || (Offer{NodeID: "x"}).IsLeader() {
		t.Fatal("IsLeader is wrong")
	}
}
