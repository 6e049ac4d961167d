package device_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/deviceproto"
)

func deviceKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := deviceproto.GenerateDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicDER(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// dialKey dials as device value with key; Dial authenticates when the
// server says the device is onboarded.
func dialKey(t testing.TB, srv *devicetest.Server, value string, key crypto.Signer) (*deviceproto.Client, error) {
	t.Helper()
	c, err := deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello(value), Key: key})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func mustDialKey(t testing.TB, srv *devicetest.Server, value string, key crypto.Signer) *deviceproto.Client {
	t.Helper()
	c, err := dialKey(t, srv, value, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var pe *deviceproto.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("got %v, want error %s", err, code)
	}
	if pe.Message == "" || strings.Contains(pe.Message, "\n") {
		t.Fatalf("error message %q", pe.Message)
	}
}

func sid(value string) hostid.HostID {
	id, err := hostid.Parse(value, "STRING")
	if err != nil {
		panic(err)
	}
	return id
}

func credential(t testing.TB, srv *devicetest.Server, value string) ([]byte, bool) {
	var cred []byte
	var ok bool
	srv.Read(t, func(s *core.State) error { cred, ok = s.DeviceCredential(sid(value)); return nil })
	return cred, ok
}

func onboardRecords(t testing.TB, srv *devicetest.Server) []core.AuditRecord {
	var out []core.AuditRecord
	srv.Read(t, func(s *core.State) error {
		for _, r := range s.Audit(0, 0) {
			if r.Action == "onboard" {
				out = append(out, r)
			}
		}
		return nil
	})
	return out
}

func TestOnboardWithOneTimeKey(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	ids, secrets := srv.CreateKeys(t, core.KeyOneTime, 1)
	ctx := context.Background()
	keyA := deviceKey(t)

	a := mustDialKey(t, srv, "ob-a", keyA)
	if w := a.Welcome(); w.Onboarded || len(w.Challenge) != deviceproto.ChallengeSize {
		t.Fatalf("welcome before onboarding: onboarded %v, challenge %x", w.Onboarded, w.Challenge)
	}
	dev, err := a.Onboard(ctx, secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	if dev != "ob-a" || !a.Authenticated() {
		t.Fatalf("onboarded %q, authenticated %v", dev, a.Authenticated())
	}
	if _, err := a.Checkout(ctx, feature("cad", "1.0", 1)); err != nil {
		t.Fatal(err)
	}
	if cred, ok := credential(t, srv, "ob-a"); !ok || !bytes.Equal(cred, publicDER(t, keyA)) {
		t.Fatalf("credential %x %v", cred, ok)
	}

	// The key is used: another device is refused, and nothing changes.
	b := mustDialKey(t, srv, "ob-b", deviceKey(t))
	_, err = b.Onboard(ctx, secrets[0])
	wantCode(t, err, deviceproto.CodeKeyUsed)
	if _, ok := credential(t, srv, "ob-b"); ok {
		t.Fatal("ob-b has a credential")
	}
	srv.Read(t, func(s *core.State) error {
		k, err := s.Key(ids[0])
		if err != nil {
			return err
		}
		if k.State != core.KeyUsed || k.Uses != 1 || k.UsedBy != sid("ob-a") {
			t.Errorf("key after onboarding: %+v", k)
		}
		return nil
	})
	if recs := onboardRecords(t, srv); len(recs) != 1 || recs[0].User != "device:ob-a (STRING)" || !strings.Contains(recs[0].Detail, ids[0]) || recs[0].Address == "" {
		t.Fatalf("audit %+v", recs)
	}

	// Later connections authenticate with the key by themselves.
	a.Close()
	again := mustDialKey(t, srv, "ob-a", keyA)
	if !again.Welcome().Onboarded || !again.Authenticated() {
		t.Fatalf("reconnect: onboarded %v, authenticated %v", again.Welcome().Onboarded, again.Authenticated())
	}
	st, err := again.Status(ctx)
	if err != nil || len(st.Leases) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	if metric(t, srv, "tally_device_onboardings_total") != 1 || metric(t, srv, "tally_device_authentications_total") != 1 {
		t.Fatal("onboarding or authentication not counted")
	}
}

func TestOnboardWithMassKey(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	ids, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	ctx := context.Background()
	const n = 20
	for i := range n {
		var key crypto.Signer = deviceKey(t)
		if i%2 == 1 {
			_, key, _ = ed25519.GenerateKey(rand.Reader)
		}
		value := fmt.Sprintf("mass-%d", i)
		c := mustDialKey(t, srv, value, key)
		if dev, err := c.Onboard(ctx, secrets[0]); err != nil || dev != value {
			t.Fatalf("%s: %q %v", value, dev, err)
		}
		c.Close()
		// Ed25519 and ECDSA keys both authenticate later connections.
		c = mustDialKey(t, srv, value, key)
		if !c.Authenticated() {
			t.Fatalf("%s did not authenticate", value)
		}
		if _, err := c.Checkout(ctx, feature("viewer", "2.0", 1)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	srv.Read(t, func(s *core.State) error {
		k, _ := s.Key(ids[0])
		if k.State != core.KeyActive || k.Uses != n {
			t.Errorf("mass key %+v", k)
		}
		return nil
	})
	if recs := onboardRecords(t, srv); len(recs) != n {
		t.Fatalf("%d onboard audit records", len(recs))
	}
}

// TestOnboardedDeviceCannotBeTakenOver: whoever holds a mass key and knows
// an onboarded device's hostid cannot give it another credential.
func TestOnboardedDeviceCannotBeTakenOver(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	ctx := context.Background()
	owner := deviceKey(t)
	c := mustDialKey(t, srv, "victim", owner)
	if _, err := c.Onboard(ctx, secrets[0]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	before, _ := credential(t, srv, "victim")

	thief, err := deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello("victim"),
		Key: deviceKey(t), ManualAuthentication: true})
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	_, err = thief.Onboard(ctx, secrets[0])
	wantCode(t, err, deviceproto.CodeAlreadyOnboarded)
	if after, _ := credential(t, srv, "victim"); !bytes.Equal(before, after) {
		t.Fatal("the credential changed")
	}
	// The owner still authenticates.
	if c := mustDialKey(t, srv, "victim", owner); !c.Authenticated() {
		t.Fatal("the owner no longer authenticates")
	}
}

// TestFailuresAreLimitedPerAddress: reconnecting does not buy more guesses
// at a key; the address gets more attempts back as time passes.
func TestFailuresAreLimitedPerAddress(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := devicetest.NewServer(t, device.Config{Now: clock, MaxAuthFailures: 2, MaxSourceAuthFailures: 3, SourceAuthInterval: time.Minute})
	_, secrets := srv.CreateKeys(t, core.KeyOneTime, 1)
	ctx := context.Background()
	guess := func(i int) error {
		c, err := dialKey(t, srv, fmt.Sprintf("guesser-%d", i), deviceKey(t))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Onboard(ctx, "wrong-guess-"+fmt.Sprint(i))
		return err
	}
	for i := range 3 {
		wantCode(t, guess(i), deviceproto.CodeUnknownKey)
	}
	wantCode(t, guess(3), deviceproto.CodeRateLimited)
	// Even the right key is turned away until the address has waited.
	c := mustDialKey(t, srv, "patient", deviceKey(t))
	_, err := c.Onboard(ctx, secrets[0])
	wantCode(t, err, deviceproto.CodeRateLimited)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	c = mustDialKey(t, srv, "patient", deviceKey(t))
	if _, err := c.Onboard(ctx, secrets[0]); err != nil {
		t.Fatalf("after waiting: %v", err)
	}
}

func TestOnboardRefusals(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{MaxAuthFailures: 100})
	ids, secrets := srv.CreateKeys(t, core.KeyOneTime, 3)
	srv.Apply(t, &core.SetKeyActive{ID: ids[0], Active: false})
	srv.Apply(t, &core.DeleteKey{ID: ids[1]})
	ctx := context.Background()
	c := mustDialKey(t, srv, "refused", deviceKey(t))

	_, err := c.Onboard(ctx, secrets[0])
	wantCode(t, err, deviceproto.CodeKeyInactive)
	_, err = c.Onboard(ctx, secrets[1])
	wantCode(t, err, deviceproto.CodeUnknownKey)
	_, err = c.Onboard(ctx, "no-such-key-secret")
	wantCode(t, err, deviceproto.CodeUnknownKey)
	_, err = c.Onboard(ctx, "short")
	wantCode(t, err, deviceproto.CodeUnknownKey)

	// Raw messages: keys that are not ECDSA P-256 or Ed25519, and a proof
	// signed by another key than the one presented.
	ws, w := rawHello(t, srv, "raw-refused")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	own, other := deviceKey(t), deviceKey(t)
	forged, _ := deviceproto.SignChallenge(other, nil, deviceproto.OnboardDigest(w.Challenge, w.Certificate))
	authSig, _ := deviceproto.SignChallenge(own, nil, deviceproto.AuthDigest(w.Challenge, w.Certificate))
	otherChallenge := make([]byte, 32)
	staleSig, _ := deviceproto.SignChallenge(own, nil, deviceproto.OnboardDigest(otherChallenge, w.Certificate))
	before := snapshotKeys(t, srv)
	for i, tc := range []struct {
		name string
		msg  deviceproto.Onboard
		code string
	}{
		{"rsa key", deviceproto.Onboard{Key: secrets[2], PublicKey: rsaDER, Signature: forged}, deviceproto.CodeInvalidKey},
		{"garbage key", deviceproto.Onboard{Key: secrets[2], PublicKey: []byte("not a key"), Signature: forged}, deviceproto.CodeInvalidKey},
		{"no key", deviceproto.Onboard{Key: secrets[2], Signature: forged}, deviceproto.CodeInvalidKey},
		{"forged proof", deviceproto.Onboard{Key: secrets[2], PublicKey: publicDER(t, own), Signature: forged}, deviceproto.CodeAuthFailed},
		{"auth signature", deviceproto.Onboard{Key: secrets[2], PublicKey: publicDER(t, own), Signature: authSig}, deviceproto.CodeAuthFailed},
		{"other challenge", deviceproto.Onboard{Key: secrets[2], PublicKey: publicDER(t, own), Signature: staleSig}, deviceproto.CodeAuthFailed},
		{"no signature", deviceproto.Onboard{Key: secrets[2], PublicKey: publicDER(t, own)}, deviceproto.CodeAuthFailed},
	} {
		send(t, ws, deviceproto.TypeOnboard, uint64(10+i), tc.msg)
		if id, code := readError(t, ws); id != uint64(10+i) || code != tc.code {
			t.Errorf("%s: %d %s, want %s", tc.name, id, code, tc.code)
		}
	}
	if after := snapshotKeys(t, srv); after != before {
		t.Fatalf("state changed:\n%s\n%s", before, after)
	}
	if _, ok := credential(t, srv, "raw-refused"); ok {
		t.Fatal("a refused device has a credential")
	}
	if got := metric(t, srv, "tally_device_auth_failures_total"); got != 4 {
		t.Fatalf("auth failures %d, want 4", got)
	}
	if len(onboardRecords(t, srv)) != 0 {
		t.Fatal("refusals were audited as onboardings")
	}

	// The unused one-time key still onboards a device that proves its key.
	good, _ := deviceproto.SignChallenge(own, nil, deviceproto.OnboardDigest(w.Challenge, w.Certificate))
	send(t, ws, deviceproto.TypeOnboard, 30, deviceproto.Onboard{Key: secrets[2], PublicKey: publicDER(t, own), Signature: good})
	if env := read(t, ws); env.Type != deviceproto.TypeOnboarded || env.ID != 30 {
		t.Fatalf("onboard: %s %s", env.Type, env.Body)
	}

	// Onboard before hello.
	raw := rawDial(t, srv)
	send(t, raw, deviceproto.TypeOnboard, 1, deviceproto.Onboard{Key: secrets[2]})
	if _, code := readError(t, raw); code != deviceproto.CodeHelloRequired {
		t.Fatal(code)
	}
}

// snapshotKeys describes the keys, the devices' credentials and the audit
// log length.
func snapshotKeys(t testing.TB, srv *devicetest.Server) string {
	var b strings.Builder
	srv.Read(t, func(s *core.State) error {
		for _, k := range s.Keys(core.KeyFilter{}) {
			fmt.Fprintf(&b, "%s %s %d %s;", k.ID, k.State, k.Uses, k.UsedBy)
		}
		fmt.Fprintf(&b, "audit %d", s.AuditCount())
		return nil
	})
	return b.String()
}

func TestAuthenticate(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	ctx := context.Background()
	key := deviceKey(t)
	first := mustDialKey(t, srv, "auth-1", key)
	if _, err := first.Onboard(ctx, secrets[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Checkout(ctx, feature("cad", "1.0", 2)); err != nil {
		t.Fatal(err)
	}

	// The right key authenticates.
	ok := mustDialKey(t, srv, "auth-1", key)
	if !ok.Authenticated() {
		t.Fatal("not authenticated")
	}
	if st, err := ok.Status(ctx); err != nil || len(st.Leases) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}

	// Another key is refused, and counted.
	_, err := dialKey(t, srv, "auth-1", deviceKey(t))
	wantCode(t, err, deviceproto.CodeAuthFailed)
	if got := metric(t, srv, "tally_device_auth_failures_total"); got != 1 {
		t.Fatalf("auth failures %d", got)
	}

	// Without a key, hello is answered but requests need authentication;
	// the hello changes nothing of the device.
	ws := rawDial(t, srv)
	h := hello("auth-1")
	h.Protocol = deviceproto.Protocol
	h.Alias = "impostor"
	send(t, ws, deviceproto.TypeHello, 1, h)
	env := read(t, ws)
	var w deviceproto.Welcome
	if env.Type != deviceproto.TypeWelcome || decode(env.Body, &w) != nil || !w.Onboarded {
		t.Fatalf("hello as an onboarded device: %s %s", env.Type, env.Body)
	}
	for i, typ := range []string{deviceproto.TypeCapabilityRequest, deviceproto.TypeRenew, deviceproto.TypeReturn, deviceproto.TypeStatus} {
		body := any(deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("cad", "1.0", 0)}})
		if typ == deviceproto.TypeReturn {
			body = deviceproto.ReturnRequest{Features: []deviceproto.FeatureRef{{Name: "cad", Version: "1.0"}}}
		}
		send(t, ws, typ, uint64(2+i), body)
		if _, code := readError(t, ws); code != deviceproto.CodeAuthRequired {
			t.Errorf("%s before authenticate: %s", typ, code)
		}
	}
	srv.Read(t, func(s *core.State) error {
		d, err := s.Device(sid("auth-1"))
		if d.Alias == "impostor" || len(d.Leases) != 1 || d.Leases[0].Count != 2 {
			t.Errorf("device after an unauthenticated hello: %+v %v", d, err)
		}
		return nil
	})

	// Authenticating on that connection serves it and applies its hello.
	sig, _ := deviceproto.SignChallenge(key, nil, deviceproto.AuthDigest(w.Challenge, w.Certificate))
	send(t, ws, deviceproto.TypeAuthenticate, 10, deviceproto.Authenticate{Signature: sig})
	if env := read(t, ws); env.Type != deviceproto.TypeAuthenticated || env.ID != 10 {
		t.Fatalf("authenticate: %s %s", env.Type, env.Body)
	}
	send(t, ws, deviceproto.TypeStatus, 11, nil)
	if env := read(t, ws); env.Type != deviceproto.TypeStatus {
		t.Fatalf("status after authenticate: %s %s", env.Type, env.Body)
	}
	srv.Read(t, func(s *core.State) error {
		if d, _ := s.Device(sid("auth-1")); d.Alias != "impostor" {
			t.Errorf("hello not applied after authenticate: %+v", d.DeviceSummary)
		}
		return nil
	})

	// A device that is not onboarded cannot authenticate.
	plain, pw := rawHello(t, srv, "auth-plain")
	sig, _ = deviceproto.SignChallenge(key, nil, deviceproto.AuthDigest(pw.Challenge, pw.Certificate))
	send(t, plain, deviceproto.TypeAuthenticate, 5, deviceproto.Authenticate{Signature: sig})
	if _, code := readError(t, plain); code != deviceproto.CodeAuthFailed {
		t.Fatal(code)
	}
}

func TestOnboardingElsewhereRequiresAuthentication(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	ctx := context.Background()
	// A connection that said hello before the device was onboarded ...
	early := dial(t, srv, "late-1")
	if _, err := early.Status(ctx); err != nil {
		t.Fatal(err)
	}
	// ... must authenticate once it is.
	c := mustDialKey(t, srv, "late-1", deviceKey(t))
	if _, err := c.Onboard(ctx, secrets[0]); err != nil {
		t.Fatal(err)
	}
	_, err := early.Status(ctx)
	wantCode(t, err, deviceproto.CodeAuthRequired)
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailureLimit(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	key := deviceKey(t)
	c := mustDialKey(t, srv, "limit-1", key)
	if _, err := c.Onboard(context.Background(), secrets[0]); err != nil {
		t.Fatal(err)
	}
	ws, _ := rawHello(t, srv, "limit-1")
	for i := range 5 {
		send(t, ws, deviceproto.TypeAuthenticate, uint64(1+i), deviceproto.Authenticate{Signature: []byte("nope")})
		if _, code := readError(t, ws); code != deviceproto.CodeAuthFailed {
			t.Fatal(code)
		}
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("after 5 failures: %v", err)
	}
	if metric(t, srv, "tally_device_auth_closed_total") != 1 || metric(t, srv, "tally_device_auth_failures_total") != 5 {
		t.Fatal("failures not counted")
	}
	// Failed onboard attempts count the same.
	ws2, _ := rawHello(t, srv, "limit-2")
	for i := range 5 {
		send(t, ws2, deviceproto.TypeOnboard, uint64(1+i), deviceproto.Onboard{Key: fmt.Sprintf("guess-%04d", i), PublicKey: []byte{1}})
		if _, code := readError(t, ws2); code != deviceproto.CodeInvalidKey {
			t.Fatal(code)
		}
	}
	ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws2.ReadMessage(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("after 5 failed onboards: %v", err)
	}
	// The device itself is unaffected.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRequireOnboarding(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	srv.Apply(t, &core.SetProperty{Name: "security.requireOnboarding", Value: "true"})
	ctx := context.Background()

	plain := dial(t, srv, "req-plain")
	res, err := plain.Checkout(ctx, feature("cad", "1.0", 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denials) != 1 || res.Denials[0].Reason != deviceproto.DenyNotOnboarded || res.Grants[0].Count != 0 {
		t.Fatalf("not onboarded: %+v", res.Payload)
	}
	if metric(t, srv, `tally_device_denials_total{reason="not_onboarded"}`) != 1 {
		t.Fatal("denial not counted")
	}

	key := deviceKey(t)
	c := mustDialKey(t, srv, "req-onboarded", key)
	if _, err := c.Onboard(ctx, secrets[0]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = mustDialKey(t, srv, "req-onboarded", key)
	res, err = c.Checkout(ctx, feature("cad", "1.0", 1))
	if err != nil || len(res.Denials) != 0 || res.Grants[0].Count != 1 {
		t.Fatalf("onboarded: %+v %v", res, err)
	}
}

// TestOnboardRace has 200 devices onboard at once over real WebSocket
// connections with 50 one-time keys. Each tries the keys in its own
// shuffled order until one works or every key has refused it, dialling
// again when the server closes the connection after failed attempts.
// Exactly 50 devices onboard, each key onboards exactly one, and the audit
// log records each use once.
func TestOnboardRace(t *testing.T) {
	if testing.Short() {
		t.Skip("200 devices")
	}
	// The devices all connect from loopback; on a LAN each has its own
	// address, so the per-address limit is lifted here.
	srv := devicetest.NewServer(t, device.Config{MaxSourceAuthFailures: 1 << 20})
	const devices, keys = 200, 50
	ids, secrets := srv.CreateKeys(t, core.KeyOneTime, keys)
	ctx := context.Background()

	type outcome struct {
		secret string
		key    crypto.Signer
	}
	won := make([]outcome, devices)
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, devices)
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			value := fmt.Sprintf("race-%03d", i)
			key := deviceKey(t)
			order := slices.Clone(secrets)
			mrand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			var c *deviceproto.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			<-start
			for n := 0; n < len(order); {
				if c == nil || c.Err() != nil {
					if c != nil {
						c.Close()
					}
					var err error
					c, err = deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello(value), Key: key, HandshakeTimeout: time.Minute})
					if err != nil {
						errs <- fmt.Errorf("%s: %w", value, err)
						return
					}
				}
				dev, err := c.Onboard(ctx, order[n])
				var pe *deviceproto.Error
				switch {
				case err == nil:
					if dev != value {
						errs <- fmt.Errorf("%s onboarded as %s", value, dev)
					}
					won[i] = outcome{order[n], key}
					return
				case errors.As(err, &pe) && pe.Code == deviceproto.CodeKeyUsed:
					n++
				case errors.As(err, &pe):
					errs <- fmt.Errorf("%s: %w", value, err)
					return
				default: // the connection closed after failed attempts; dial again
					if c.Err() == nil {
						errs <- fmt.Errorf("%s: %w", value, err)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	winners := map[string]string{} // secret → device
	for i, o := range won {
		if o.key == nil {
			continue
		}
		value := fmt.Sprintf("race-%03d", i)
		if prev, dup := winners[o.secret]; dup {
			t.Errorf("one key onboarded %s and %s", prev, value)
		}
		winners[o.secret] = value
		if cred, ok := credential(t, srv, value); !ok || !bytes.Equal(cred, publicDER(t, o.key)) {
			t.Errorf("%s: credential %x %v", value, cred, ok)
		}
	}
	if len(winners) != keys {
		t.Fatalf("%d devices onboarded, want %d", len(winners), keys)
	}
	usedBy := map[hostid.HostID]bool{}
	srv.Read(t, func(s *core.State) error {
		for _, id := range ids {
			k, err := s.Key(id)
			if err != nil {
				return err
			}
			if k.State != core.KeyUsed || k.Uses != 1 || usedBy[k.UsedBy] {
				t.Errorf("key %+v", k)
			}
			usedBy[k.UsedBy] = true
		}
		return nil
	})
	recs := onboardRecords(t, srv)
	if len(recs) != keys {
		t.Fatalf("%d onboard audit records, want %d", len(recs), keys)
	}
	perKey := map[string]int{}
	for _, r := range recs {
		for _, id := range ids {
			if strings.HasSuffix(r.Detail, " "+id) {
				perKey[id]++
			}
		}
	}
	for _, id := range ids {
		if perKey[id] != 1 {
			t.Errorf("key %s in %d audit records", id, perKey[id])
		}
	}
	srv.Read(t, func(s *core.State) error { return s.VerifyAudit() })
}

func decode(b []byte, v any) error { return json.Unmarshal(b, v) }
