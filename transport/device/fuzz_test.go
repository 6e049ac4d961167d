package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
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
	h, err := NewHandler(Config{Store: st, Signer: key, Certificate: der, MaxRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

var replyTypes = []string{deviceproto.TypeWelcome, deviceproto.TypeCapabilityResponse, deviceproto.TypeStatus, deviceproto.TypeError}

// exchange processes one frame on c and checks every reply.
func exchange(t *testing.T, c *conn, frame []byte) []deviceproto.Envelope {
	c.process(frame)
	c.requests.Wait()
	var out []deviceproto.Envelope
	for {
		select {
		case msg := <-c.send:
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
		default:
			return out
		}
	}
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
	c := newConn(h, nil)
	if hello {
		replies := exchange(t, c, frame(deviceproto.TypeHello,
			[]byte(`{"protocol":"tally-device/1","hostIds":[{"value":"fuzz-device","type":"STRING"}]}`)))
		if len(replies) != 1 || replies[0].Type != deviceproto.TypeWelcome {
			t.Fatalf("hello: %+v", replies)
		}
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
