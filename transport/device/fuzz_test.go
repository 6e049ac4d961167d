package device

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// The fuzz targets feed arbitrary frames and bodies through the handler's
// processing, against a real core.State, without a network: whatever a
// device sends, the handler answers with a well-formed message of a known
// type and code, and never panics.

type lockedStore struct {
	mu    sync.Mutex
	state *core.State
	seq   uint64
}

func (s *lockedStore) Apply(ctx context.Context, c core.Command) (core.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.state.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: s.seq}, At: time.Now(), Command: c})
}

func (s *lockedStore) Read(ctx context.Context, fn func(*core.State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.state)
}

func fuzzHandler(t testing.TB) *Handler {
	h, _ := fuzzHandlerAndKey(t)
	return h
}

// fuzzHandlerAndKey returns a handler whose store holds keys (mass
// fuzzMassSecret, an inactive mass key, one-time keys fuzz-one-time-1 and
// -2) and the device fuzzOnboardedDevice, onboarded with the returned key.
func fuzzHandlerAndKey(t testing.TB) (*Handler, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	st := &lockedStore{state: core.New(core.Config{})}
	if _, err := st.Apply(context.Background(), &core.LoadRights{Source: "fuzz", Sequence: 1, Lines: []core.FeatureLine{
		{Name: "cad", Version: version.MustParse("1.0"), Count: 10, Overdraft: 2},
		{Name: "viewer", Version: version.MustParse("2.0"), Count: 100},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(context.Background(), &core.CreateKeys{KeyType: core.KeyMass, Keys: []core.NewKey{
		{ID: "mass", Secret: fuzzMassSecret}, {ID: "mass-off", Secret: "fuzz-inactive-secret"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(context.Background(), &core.SetKeyActive{ID: "mass-off"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(context.Background(), &core.CreateKeys{KeyType: core.KeyOneTime, Keys: []core.NewKey{
		{ID: "once-1", Secret: "fuzz-one-time-1"}, {ID: "once-2", Secret: "fuzz-one-time-2"}}}); err != nil {
		t.Fatal(err)
	}
	deviceKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(deviceKey.Public())
	onboarded, _ := hostid.Parse(fuzzOnboardedDevice, "STRING")
	if _, err := st.Apply(context.Background(), &core.Onboard{Device: core.DeviceInfo{ID: onboarded, HostIDs: []hostid.HostID{onboarded}},
		Secret: fuzzMassSecret, PublicKey: pub}); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{Store: st, Signer: key, Certificate: der, MaxRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, deviceKey
}

const (
	fuzzMassSecret      = "fuzz-mass-secret"
	fuzzOnboardedDevice = "fuzz-onboarded"
)

var replyTypes = []string{deviceproto.TypeWelcome, deviceproto.TypeCapabilityResponse, deviceproto.TypeStatus,
	deviceproto.TypeOnboarded, deviceproto.TypeAuthenticated, deviceproto.TypeError}

// exchange processes one frame on c and checks every reply.
func exchange(t *testing.T, c *conn, frame []byte) []deviceproto.Envelope {
	c.process(frame)
	c.requests.Wait()
	var out []deviceproto.Envelope
	for _, queued := range c.takeQueued() {
		msg := queued.data
		var env deviceproto.Envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			t.Fatalf("reply is not an envelope: %s", msg)
		}
		if !slices.Contains(replyTypes, env.Type) {
			t.Fatalf("reply of type %q", env.Type)
		}
		if env.Type == deviceproto.TypeError {
			var e deviceproto.Error
			if err := json.Unmarshal(env.Body, &e); err != nil || !slices.Contains(errorCodes, e.Code) || e.Message == "" {
				t.Fatalf("error reply %s", env.Body)
			}
			if e.Code == deviceproto.CodeInternal {
				t.Fatalf("internal error for %q: %s", frame, env.Body)
			}
		}
		if env.Type == deviceproto.TypeCapabilityResponse {
			var s deviceproto.Signed
			if err := json.Unmarshal(env.Body, &s); err != nil {
				t.Fatal(err)
			}
			if err := deviceproto.Verify(c.h.cfg.Signer.Public().(*ecdsa.PublicKey), s); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, env)
	}
	return out
}

func frame(typ string, body []byte) []byte {
	if !json.Valid(body) {
		body = []byte("null")
	}
	msg, _ := json.Marshal(deviceproto.Envelope{Type: typ, ID: 42, Body: body})
	return msg
}

// newTestConn returns a connection without a socket; with hello it has
// said hello as device "fuzz-device".
func newTestConn(t *testing.T, h *Handler, hello bool) *conn {
	if !hello {
		return newConn(h, nil, nil)
	}
	return newTestConnAs(t, h, "fuzz-device")
}

// newTestConnAs returns a connection without a socket that has said hello
// as device value.
func newTestConnAs(t *testing.T, h *Handler, value string) *conn {
	c := newConn(h, nil, nil)
	c.addr = "192.0.2.1:50000"
	replies := exchange(t, c, frame(deviceproto.TypeHello,
		[]byte(`{"protocol":"tally-device/1","hostIds":[{"value":"`+value+`","type":"STRING"}]}`)))
	if len(replies) != 1 || replies[0].Type != deviceproto.TypeWelcome {
		t.Fatalf("hello: %+v", replies)
	}
	return c
}

func FuzzEnvelope(f *testing.F) {
	h := fuzzHandler(f)
	f.Add([]byte(`{"type":"status","id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		exchange(t, newTestConn(t, h, true), data)
	})
}

func fuzzBody(f *testing.F, typ string, hello bool) {
	h := fuzzHandler(f)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := newTestConn(t, h, hello)
		replies := exchange(t, c, frame(typ, body))
		if len(replies) != 1 || replies[0].ID != 42 {
			t.Fatalf("%d replies to one request: %+v", len(replies), replies)
		}
	})
}

func FuzzHello(f *testing.F)             { fuzzBody(f, deviceproto.TypeHello, false) }
func FuzzCapabilityRequest(f *testing.F) { fuzzBody(f, deviceproto.TypeCapabilityRequest, true) }
func FuzzRenew(f *testing.F)             { fuzzBody(f, deviceproto.TypeRenew, true) }
func FuzzReturn(f *testing.F)            { fuzzBody(f, deviceproto.TypeReturn, true) }
func FuzzStatus(f *testing.F)            { fuzzBody(f, deviceproto.TypeStatus, true) }

// withProof replaces $PUB and $SIG in body by the device key's public key
// and its signature over digest, both standard base64, so that the fuzzer
// reaches past the proof check.
func withProof(t *testing.T, key *ecdsa.PrivateKey, body, digest []byte) []byte {
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	body = bytes.ReplaceAll(body, []byte("$PUB"), []byte(base64.StdEncoding.EncodeToString(pub)))
	if bytes.Contains(body, []byte("$SIG")) {
		sig, err := deviceproto.SignChallenge(key, rand.Reader, digest)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.ReplaceAll(body, []byte("$SIG"), []byte(base64.StdEncoding.EncodeToString(sig)))
	}
	return body
}

// fuzzState reads what onboarding may change: the device's credential and
// the keys.
func fuzzState(t *testing.T, h *Handler, device string) (cred []byte, keys []core.KeySummary) {
	id, _ := hostid.Parse(device, "STRING")
	h.cfg.Store.Read(context.Background(), func(s *core.State) error {
		cred, _ = s.DeviceCredential(id)
		keys = s.Keys(core.KeyFilter{})
		return nil
	})
	return cred, keys
}

// FuzzOnboard sends onboard bodies from one of four devices. Whatever the
// body, one reply comes back; a one-time key never onboards two devices;
// an onboarded reply leaves the presented public key as the credential;
// a refusal changes neither the credential nor the keys.
func FuzzOnboard(f *testing.F) {
	h, key := fuzzHandlerAndKey(f)
	f.Add([]byte(`{"key":"fuzz-mass-secret","publicKey":"$PUB","signature":"$SIG"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		device := fmt.Sprintf("fuzz-new-%d", len(body)%4)
		c := newTestConnAs(t, h, device)
		body = withProof(t, key, body, deviceproto.OnboardDigest(c.challenge, h.cfg.Certificate))
		credBefore, keysBefore := fuzzState(t, h, device)
		replies := exchange(t, c, frame(deviceproto.TypeOnboard, body))
		if len(replies) != 1 || replies[0].ID != 42 {
			t.Fatalf("%d replies to one request: %+v", len(replies), replies)
		}
		cred, keys := fuzzState(t, h, device)
		switch replies[0].Type {
		case deviceproto.TypeOnboarded:
			var msg deviceproto.Onboard
			if err := json.Unmarshal(body, &msg); err != nil || !bytes.Equal(cred, msg.PublicKey) {
				t.Fatalf("onboarded with %x, credential %x (%v)", msg.PublicKey, cred, err)
			}
			if _, err := c.admitted(); err != nil {
				t.Fatalf("not admitted after onboarding: %v", err)
			}
		case deviceproto.TypeError:
			if !bytes.Equal(cred, credBefore) || !slices.EqualFunc(keys, keysBefore, func(a, b core.KeySummary) bool { return a == b }) {
				t.Fatalf("a refused onboard changed the state")
			}
		default:
			t.Fatalf("onboard answered with %s", replies[0].Type)
		}
		for _, k := range keys {
			if k.Type == core.KeyOneTime && k.Uses > 1 {
				t.Fatalf("one-time key used %d times", k.Uses)
			}
		}
	})
}

// FuzzAuthenticate sends authenticate bodies as the onboarded fuzz
// device: one reply comes back, and only a valid signature admits the
// connection.
func FuzzAuthenticate(f *testing.F) {
	h, key := fuzzHandlerAndKey(f)
	f.Add([]byte(`{"signature":"$SIG"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := newTestConnAs(t, h, fuzzOnboardedDevice)
		body = withProof(t, key, body, deviceproto.AuthDigest(c.challenge, h.cfg.Certificate))
		replies := exchange(t, c, frame(deviceproto.TypeAuthenticate, body))
		if len(replies) != 1 || replies[0].ID != 42 {
			t.Fatalf("%d replies to one request: %+v", len(replies), replies)
		}
		_, err := c.admitted()
		switch replies[0].Type {
		case deviceproto.TypeAuthenticated:
			var msg deviceproto.Authenticate
			json.Unmarshal(body, &msg)
			if deviceproto.VerifyChallenge(key.Public(), deviceproto.AuthDigest(c.challenge, h.cfg.Certificate), msg.Signature) != nil {
				t.Fatalf("authenticated without a valid signature: %s", body)
			}
			if err != nil {
				t.Fatalf("not admitted after authenticating: %v", err)
			}
		case deviceproto.TypeError:
			if err == nil {
				t.Fatal("admitted after a refused authenticate")
			}
		default:
			t.Fatalf("authenticate answered with %s", replies[0].Type)
		}
	})
}
