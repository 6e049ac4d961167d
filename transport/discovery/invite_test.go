package discovery

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	testDevice = HostID{HostIDEthernet, "00:11:22:00:00:01"}
	testSecret = "K7QX2-M4PRT-9WZHC-3NVBD"
)

// testInvite is an INVITE of id for testDevice, unsigned.
func testInvite(id identity, nonce Nonce) Packet {
	info := testInfo("node-b", "node-c")()
	return Packet{Nonce: nonce, Endpoints: info.Endpoints, Cluster: info.Cluster, Leader: info.Leader, NodeID: info.NodeID,
		Fingerprint: id.fp, Certificate: id.cert, Timestamp: testNow, Device: testDevice, Secret: testSecret}
}

func mustSignInvite(t testing.TB, p Packet, by identity) []byte {
	t.Helper()
	b, err := SignInvite(p, by.key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signInContext encodes p as it is and signs it in the context of the type
// ctx, whatever p's type.
func signInContext(t testing.TB, p Packet, ctx Type, by identity) []byte {
	t.Helper()
	b, err := appendUnsigned(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := by.key.Sign(rand.Reader, signedDigest(ctx, b), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = appendField(b, tagSignature, sig); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyInvite(t *testing.T) {
	id, rogue := newIdentity(t), newIdentity(t)
	base := testInvite(id, Nonce{9})
	with := func(f func(*Packet)) Packet { p := base; f(&p); return p }
	flipped := mustSignInvite(t, base, id)
	flipped[len(flipped)-5] ^= 0x40
	policy := VerifyPolicy{Now: testNow, MaxSkew: InviteMaxSkew}
	pinned := policy
	pinned.Pinned = id.fp
	pinnedRogue := policy
	pinnedRogue.Pinned = rogue.fp
	otherNonce := policy
	otherNonce.Nonce = Nonce{1}
	asInvite := with(func(p *Packet) { p.Type = TypeInvite })
	asOffer := with(func(p *Packet) { p.Type, p.Device, p.Secret = TypeOffer, HostID{}, "" })

	cases := []struct {
		name   string
		b      []byte
		policy VerifyPolicy
		want   error
	}{
		{"genuine", mustSignInvite(t, base, id), policy, nil},
		{"genuine pinned", mustSignInvite(t, base, id), pinned, nil},
		{"the policy's nonce is ignored", mustSignInvite(t, base, id), otherNonce, nil},
		{"clock a little behind", mustSignInvite(t, with(func(p *Packet) { p.Timestamp = testNow.Add(-InviteMaxSkew + time.Second) }), id), policy, nil},
		{"signature bit flipped", flipped, policy, ErrBadSignature},
		{"signed by another key", mustSignInvite(t, base, rogue), policy, ErrBadSignature},
		{"signed in the offer context", signInContext(t, asInvite, TypeOffer, id), policy, ErrBadSignature},
		{"stale", mustSignInvite(t, with(func(p *Packet) { p.Timestamp = testNow.Add(-InviteMaxSkew - time.Second) }), id), policy, ErrStale},
		{"from the future", mustSignInvite(t, with(func(p *Packet) { p.Timestamp = testNow.Add(InviteMaxSkew + time.Second) }), id), policy, ErrStale},
		{"fingerprint not of the certificate", mustSignInvite(t, with(func(p *Packet) { p.Certificate = rogue.cert }), rogue), policy, ErrFingerprint},
		{"rogue with its own identity, pinned", mustSignInvite(t, with(func(p *Packet) { p.Certificate, p.Fingerprint = rogue.cert, rogue.fp }), rogue), pinned, ErrFingerprint},
		{"genuine, pinned to another", mustSignInvite(t, base, id), pinnedRogue, ErrFingerprint},
		{"not a certificate", mustSignInvite(t, with(func(p *Packet) { p.Certificate = []byte("junk"); p.Fingerprint = sha(p.Certificate) }), id), policy, ErrBadCertificate},
		{"an offer", signInContext(t, asOffer, TypeOffer, id), policy, ErrMalformed},
		{"truncated", mustSignInvite(t, base, id)[:100], policy, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := VerifyInvite(c.b, c.policy)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("VerifyInvite = %v, want %v", err, c.want)
			}
			if err == nil && (inv.Device != testDevice || inv.Secret != testSecret || inv.Nonce != (Nonce{9})) {
				t.Fatalf("verified invitation %+v", inv)
			}
		})
	}
	// The other way round: an OFFER signed in the invite context.
	if _, err := VerifyOffer(signInContext(t, asOffer, TypeInvite, id), VerifyPolicy{Nonce: Nonce{9}, Now: testNow, MaxSkew: time.Minute}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyOffer of an offer signed as an invite = %v, want ErrBadSignature", err)
	}
	if _, err := VerifyOffer(signInContext(t, asOffer, TypeOffer, id), VerifyPolicy{Nonce: Nonce{9}, Now: testNow, MaxSkew: time.Minute}); err != nil {
		t.Fatalf("VerifyOffer of the same offer signed as an offer = %v", err)
	}
}

func TestInvitationURLsLeaderFirst(t *testing.T) {
	inv := Invitation{NodeID: "node-b", Leader: "node-c", Endpoints: testInfo("", "")().Endpoints}
	want := []string{"wss://10.0.0.3:8443/ws/device", "wss://10.0.0.2:8443/ws/device", "wss://10.0.0.1:8443/ws/device"}
	if got := inv.URLs(); !slices.Equal(got, want) {
		t.Fatalf("URLs = %v, want %v", got, want)
	}
}

func TestInviteRoundTripFields(t *testing.T) {
	id := newIdentity(t)
	p, err := Decode(samplePackets(t, id)["invite"])
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != TypeInvite || p.Device != (HostID{HostIDEthernet, "00:11:22:aa:bb:cc"}) || p.Secret != "K7QX2-M4PRT-9WZHC-3NVBD" ||
		p.NodeID != "node-a" || p.Leader != "node-b" || p.Cluster != "pune-lab" || len(p.Endpoints) != 3 ||
		p.Fingerprint != id.fp || !bytes.Equal(p.Certificate, id.cert) || !p.Timestamp.Equal(testNow) || len(p.Signature) == 0 {
		t.Fatalf("invite decoded as %+v", p)
	}
	if TypeInvite.String() != "invite" || Type(8).String() != "Type(8)" {
		t.Fatalf("type names %q %q", TypeInvite, Type(8))
	}
}

func TestDecodeRefusesInvites(t *testing.T) {
	id := newIdentity(t)
	hid := append([]byte{byte(HostIDEthernet)}, "00:11:22:aa:bb:cc"...)
	// signed returns a packet of type ty with the fields an INVITE
	// shares with an OFFER around extra, and a signature that Decode does
	// not check.
	signed := func(ty Type, extra ...[]byte) []byte {
		parts := [][]byte{header(ty), field(tagEndpoint, append([]byte{1}, "awss://h:1/"...)), field(tagNodeID, []byte("a")),
			field(tagFingerprint, id.fp[:]), field(tagCertificate, id.cert),
			field(tagTimestamp, binary.BigEndian.AppendUint64(nil, uint64(testNow.UnixMilli())))}
		parts = append(parts, extra...)
		return cat(append(parts, field(tagSignature, make([]byte, 70)))...)
	}
	invite := func(secret string) []byte {
		return signed(TypeInvite, field(tagDevice, hid), field(tagSecret, []byte(secret)))
	}
	if _, err := Decode(invite("12345678")); err != nil {
		t.Fatalf("the well-formed invite is refused: %v", err)
	}
	if _, err := Decode(invite(strings.Repeat("~", MaxSecretLen))); err != nil {
		t.Fatalf("the invite with the longest secret is refused: %v", err)
	}
	withoutSignature := invite("12345678")
	withoutSignature = withoutSignature[:len(withoutSignature)-fieldHeaderSize-70]
	flagged := invite("12345678")
	flagged[5] = flagOnboarded
	for name, b := range map[string][]byte{
		"missing secret":            signed(TypeInvite, field(tagDevice, hid)),
		"missing device":            signed(TypeInvite, field(tagSecret, []byte("12345678"))),
		"missing signature":         withoutSignature,
		"missing certificate":       cat(header(TypeInvite), field(tagNodeID, []byte("a")), field(tagDevice, hid), field(tagSecret, []byte("12345678"))),
		"secret before device":      signed(TypeInvite, field(tagSecret, []byte("12345678")), field(tagDevice, hid)),
		"two secrets":               signed(TypeInvite, field(tagDevice, hid), field(tagSecret, []byte("12345678")), field(tagSecret, []byte("12345678"))),
		"onboarded flag":            flagged,
		"secret in a discover":      cat(header(TypeDiscover), field(tagSecret, []byte("12345678"))),
		"secret in an offer":        signed(TypeOffer, field(tagSecret, []byte("12345678"))),
		"device in an offer":        signed(TypeOffer, field(tagDevice, hid)),
		"device in a pong":          cat(header(TypePong), field(tagDeviceID, hid), field(tagDevice, hid)),
		"device of type 0":          signed(TypeInvite, field(tagDevice, []byte{0, 'a'}), field(tagSecret, []byte("12345678"))),
		"secret too short":          invite("1234567"),
		"secret too long":           invite(strings.Repeat("s", MaxSecretLen+1)),
		"secret with a newline":     invite("1234\n5678"),
		"secret with a DEL":         invite("1234\x7f5678"),
		"secret not ASCII":          invite("1234é5678"),
		"secret starting with a sp": invite(" 12345678"),
		"secret ending with a sp":   invite("12345678 "),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeRefusesInvites(t *testing.T) {
	id := newIdentity(t)
	for name, p := range map[string]Packet{
		"no secret":    func() Packet { p := testInvite(id, Nonce{1}); p.Secret = ""; return p }(),
		"no device":    func() Packet { p := testInvite(id, Nonce{1}); p.Device = HostID{}; return p }(),
		"bad secret":   func() Packet { p := testInvite(id, Nonce{1}); p.Secret = "tab\there!"; return p }(),
		"no endpoints": func() Packet { p := testInvite(id, Nonce{1}); p.Endpoints = nil; return p }(),
	} {
		if _, err := SignInvite(p, id.key, rand.Reader); !errors.Is(err, ErrInvalid) {
			t.Errorf("SignInvite with %s = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Encode(Packet{Type: TypeDiscover, Secret: "12345678"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of a DISCOVER with a secret = %v, want ErrInvalid", err)
	}
	offer := testInvite(id, Nonce{1})
	if _, err := SignOffer(offer, id.key, rand.Reader); !errors.Is(err, ErrInvalid) {
		t.Errorf("SignOffer with a device and secret = %v, want ErrInvalid", err)
	}
}

// invitations collects what an Answerer's Invite callback is given.
func invitations() (chan Invitation, func(Invitation)) {
	ch := make(chan Invitation, 16)
	return ch, func(inv Invitation) { ch <- inv }
}

func trusting(fps ...Fingerprint) func(Fingerprint) bool {
	return func(fp Fingerprint) bool { return slices.Contains(fps, fp) }
}

func TestInvite(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{Offer: testInfo("node-b", "node-c")})
	got, invite := invitations()
	a := startAnswerer(t, AnswererConfig{Present: agentInfo(testDevice.Value, "one"), Trust: trusting(id.fp), Invite: invite})
	// The device's second HostID is invited.
	device := HostID{HostIDString, "host-one"}
	if err := r.Invite(addrOf(a.cfg.Conn), device, testSecret); err != nil {
		t.Fatal(err)
	}
	inv := <-got
	if inv.From != addrOf(r.cfg.Conn) || inv.Nonce == (Nonce{}) || inv.NodeID != "node-b" || inv.Leader != "node-c" ||
		inv.Cluster != "pune-lab" || !slices.Equal(inv.Endpoints, testInfo("", "")().Endpoints) || inv.Fingerprint != id.fp ||
		!bytes.Equal(inv.Certificate, id.cert) || !inv.Timestamp.Equal(testNow) || inv.Device != device || inv.Secret != testSecret {
		t.Fatalf("invitation %+v", inv)
	}
	if inv.URLs()[0] != "wss://10.0.0.3:8443/ws/device" {
		t.Fatalf("first URL %s, want the leader's", inv.URLs()[0])
	}
	// A second invitation has a nonce of its own and is taken too.
	if err := r.Invite(addrOf(a.cfg.Conn), device, testSecret); err != nil {
		t.Fatal(err)
	}
	if again := <-got; again.Nonce == inv.Nonce {
		t.Fatal("two invitations with one nonce")
	}
	waitFor(t, "the invitations to be counted", func() bool { return r.counters.sent[TypeInvite].Load() == 2 })
	m := metricsText(t, func(w *strings.Builder) error { return a.WriteMetrics(w) })
	if !strings.Contains(m, `tally_discovery_received_total{role="agent",type="invite"} 2`+"\n") {
		t.Fatalf("agent metrics:\n%s", m)
	}
	m = metricsText(t, func(w *strings.Builder) error { return r.WriteMetrics(w) })
	if !strings.Contains(m, `tally_discovery_sent_total{role="server",type="invite"} 2`+"\n") {
		t.Fatalf("server metrics:\n%s", m)
	}
}

func TestInvitesDropped(t *testing.T) {
	id, rogue := newIdentity(t), newIdentity(t)
	got, invite := invitations()
	a := startAnswerer(t, AnswererConfig{Present: agentInfo(testDevice.Value, "one"), Trust: trusting(id.fp), Invite: invite,
		Limits: Limits{Burst: 100}})
	agent := addrOf(a.cfg.Conn)
	c := listen(t, "127.0.0.1:0")

	genuine := mustSignInvite(t, testInvite(id, Nonce{1}), id)
	otherDevice := testInvite(id, Nonce{2})
	otherDevice.Device = HostID{HostIDEthernet, "00:11:22:00:00:99"}
	untrusted := testInvite(rogue, Nonce{3}) // the rogue's own, valid, licensing ID
	forged := mustSignInvite(t, testInvite(id, Nonce{4}), id)
	forged[len(forged)-4] ^= 0x10
	swapped := testInvite(id, Nonce{5}) // the trusted fingerprint, the rogue's certificate and key
	swapped.Certificate = rogue.cert
	stale := testInvite(id, Nonce{6})
	stale.Timestamp = testNow.Add(-InviteMaxSkew - time.Second)
	asOffer := testInvite(id, Nonce{7})
	asOffer.Type = TypeInvite

	for _, b := range [][]byte{
		mustSignInvite(t, otherDevice, id),
		mustSignInvite(t, untrusted, rogue),
		forged,
		mustSignInvite(t, swapped, rogue),
		mustSignInvite(t, stale, id),
		signInContext(t, asOffer, TypeOffer, id),
		genuine,
		genuine, // replayed
	} {
		sendTo(t, c, b, agent)
	}
	if inv := <-got; inv.Nonce != (Nonce{1}) {
		t.Fatalf("took %+v", inv)
	}
	want := map[dropReason]uint64{dropUnexpected: 1, dropUntrusted: 4, dropStale: 1, dropReplay: 1}
	waitFor(t, "the invitations to be dropped", func() bool {
		var n uint64
		for r := range want {
			n += a.counters.dropped[r].Load()
		}
		return n == 7
	})
	for reason, n := range want {
		if got := a.counters.dropped[reason].Load(); got != n {
			t.Errorf("dropped %s = %d, want %d", dropReasonNames[reason], got, n)
		}
	}
	select {
	case inv := <-got:
		t.Fatalf("also took %+v", inv)
	default:
	}
	m := metricsText(t, func(w *strings.Builder) error { return a.WriteMetrics(w) })
	for _, line := range []string{
		`tally_discovery_received_total{role="agent",type="invite"} 8`,
		`tally_discovery_dropped_total{role="agent",reason="untrusted"} 4`,
		`tally_discovery_dropped_total{role="agent",reason="stale"} 1`,
		`tally_discovery_dropped_total{role="agent",reason="replay"} 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, m)
		}
	}
}

func TestInvitesUnexpected(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	// An agent that takes no invitations drops them.
	a := startAnswerer(t, AnswererConfig{Present: agentInfo(testDevice.Value, "one")})
	if err := r.Invite(addrOf(a.cfg.Conn), testDevice, testSecret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to drop the invitation", func() bool { return a.counters.dropped[dropUnexpected].Load() == 1 })
	// So does a server.
	c := listen(t, "127.0.0.1:0")
	sendTo(t, c, mustSignInvite(t, testInvite(id, Nonce{1}), id), addrOf(r.cfg.Conn))
	waitFor(t, "the server to drop the invitation", func() bool { return r.counters.dropped[dropUnexpected].Load() == 1 })
	if r.counters.received[TypeInvite].Load() != 1 || a.counters.received[TypeInvite].Load() != 1 {
		t.Fatal("invitations not counted as received")
	}
}

func TestInviteRefused(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	agent := addrOf(listen(t, "127.0.0.1:0"))
	for name, c := range map[string]struct {
		to     netip.AddrPort
		device HostID
		secret string
	}{
		"privileged port": {netip.MustParseAddrPort("127.0.0.1:999"), testDevice, testSecret},
		"no address":      {netip.AddrPort{}, testDevice, testSecret},
		"no IP":           {netip.AddrPortFrom(netip.Addr{}, 30005), testDevice, testSecret},
		"no device":       {agent, HostID{}, testSecret},
		"bad device type": {agent, HostID{9, "x"}, testSecret},
		"device too long": {agent, HostID{HostIDString, strings.Repeat("d", MaxTextLen+1)}, testSecret},
		"short secret":    {agent, testDevice, "1234567"},
		"control secret":  {agent, testDevice, "1234\x005678"},
		"padded secret":   {agent, testDevice, " 12345678"},
	} {
		if err := r.Invite(c.to, c.device, c.secret); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Invite = %v, want ErrInvalid", name, err)
		}
	}
	if n := r.counters.sent[TypeInvite].Load() + r.counters.sendErrors.Load(); n != 0 {
		t.Fatalf("%d invitations sent", n)
	}
	if _, err := NewAnswerer(AnswererConfig{Conn: listen(t, "127.0.0.1:0"), Present: agentInfo("a", "a"), Invite: func(Invitation) {}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("answerer with Invite and no Trust: %v", err)
	}
}

func TestInviteSendError(t *testing.T) {
	id := newIdentity(t)
	conn := listen(t, "127.0.0.1:0")
	r, err := NewResponder(Config{Conn: conn, Signer: id.key, Certificate: id.cert, Offer: testInfo("a", "a")})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := r.Invite(netip.MustParseAddrPort("127.0.0.1:30005"), testDevice, testSecret); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Invite on a closed socket = %v", err)
	}
	if r.counters.sendErrors.Load() != 1 {
		t.Fatal("the send error is not counted")
	}
}

func TestRecentNoncesBounded(t *testing.T) {
	var r recentNonces
	if !r.add(Nonce{0}) || r.add(Nonce{0}) {
		t.Fatal("a nonce is not remembered")
	}
	for i := range inviteMemory - 1 {
		if !r.add(Nonce{1, byte(i)}) {
			t.Fatalf("nonce %d refused", i)
		}
	}
	if r.add(Nonce{0}) {
		t.Fatal("the oldest nonce is forgotten too early")
	}
	if !r.add(Nonce{2}) || !r.add(Nonce{0}) {
		t.Fatalf("the oldest nonce is still remembered after %d others", inviteMemory)
	}
}
