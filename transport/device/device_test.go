package device_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/deviceproto"
)

func hello(value string) deviceproto.Hello {
	return deviceproto.Hello{
		HostIDs:    []deviceproto.HostID{{Value: value, Type: "STRING"}},
		DeviceType: deviceproto.DevicePhysical,
		Hostname:   value + ".example",
		Attributes: map[string]string{"site": "test"},
	}
}

func dial(t testing.TB, srv *devicetest.Server, value string) *deviceproto.Client {
	t.Helper()
	c, err := deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello(value)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func feature(name, v string, count int64) deviceproto.FeatureRequest {
	return deviceproto.FeatureRequest{Name: name, Version: v, Count: count}
}

func TestCheckoutRenewReturnStatus(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	c := dial(t, srv, "dev-1")
	ctx := context.Background()

	w := c.Welcome()
	if w.Fingerprint != srv.Identity.Fingerprint || w.Node != "node1" || w.Device != (deviceproto.HostID{Value: "dev-1", Type: "STRING"}) {
		t.Fatalf("welcome %+v", w)
	}
	if w.RenewHint.ResponseLifetimeSeconds != 86400 || w.RenewHint.RenewPercent != 15 || w.RenewHint.BorrowSeconds != 7*86400 {
		t.Fatalf("renew hint %+v", w.RenewHint)
	}

	res, err := c.Checkout(ctx, feature("cad", "1.0", 3), feature("viewer", "1.5", 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Grants) != 2 || len(res.Denials) != 0 {
		t.Fatalf("response %+v", res.Payload)
	}
	g := res.Grants[0]
	if g.Feature != "cad" || g.Count != 3 || g.Expiry.IsZero() || !g.RenewAt.Before(g.Expiry) {
		t.Fatalf("grant %+v", g)
	}
	if !res.Expires.Equal(res.Issued.Add(24 * time.Hour)) {
		t.Fatalf("issued %s expires %s", res.Issued, res.Expires)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 3 {
		t.Fatalf("cad used %d", got)
	}
	if got := srv.Used(t, "viewer", "2.0"); got != 2 {
		t.Fatalf("viewer used %d", got)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Leases) != 2 || st.Leases[0].Feature != "cad" || st.Leases[0].Count != 3 {
		t.Fatalf("status %+v", st)
	}

	res, err = c.Renew(ctx, feature("cad", "1.0", 1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Grants[0].Count != 1 || srv.Used(t, "cad", "1.0") != 1 {
		t.Fatalf("renew to 1: %+v, used %d", res.Grants, srv.Used(t, "cad", "1.0"))
	}

	res, err = c.Return(ctx, deviceproto.FeatureRef{Name: "cad", Version: "1.0"}, deviceproto.FeatureRef{Name: "viewer", Version: "1.5"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range res.Grants {
		if g.Count != 0 {
			t.Fatalf("return left %+v", g)
		}
	}
	st, err = c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Leases) != 0 {
		t.Fatalf("status after return %+v", st)
	}
}

func TestDenialReasons(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	srv.Apply(t, &core.LoadRights{Source: "later", Sequence: 1, Lines: []core.FeatureLine{
		{Name: "future", Version: version.MustParse("1.0"), Count: 5, Start: time.Now().Add(48 * time.Hour)},
	}})
	c := dial(t, srv, "dev-deny")
	ctx := context.Background()
	if _, err := c.Checkout(ctx, feature("cad", "1.0", 4)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  deviceproto.FeatureRequest
		want string
		held int64
	}{
		{feature("nothing", "1.0", 1), deviceproto.DenyNoSuchFeature, 0},
		{feature("cad", "9.0", 1), deviceproto.DenyNoSuchVersion, 0},
		{feature("future", "1.0", 1), deviceproto.DenyNotActive, 0},
		{feature("cad", "1.0", 11), deviceproto.DenyInsufficient, 4},
	} {
		res, err := c.Checkout(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Denials) != 1 || res.Denials[0].Reason != tc.want || res.Denials[0].Held != tc.held || res.Denials[0].Count != tc.req.Count {
			t.Errorf("%+v: denials %+v, want %s holding %d", tc.req, res.Denials, tc.want, tc.held)
		}
		if res.Grants[0].Count != tc.held {
			t.Errorf("%+v: grant %+v", tc.req, res.Grants[0])
		}
	}

	srv.Apply(t, &core.SetModel{Text: `model "m" { on hostname("blocked*") { deny } on any() { accept } }`})
	h := hello("blocked-1")
	h.Hostname = "blocked-1"
	blocked, err := deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: h})
	if err != nil {
		t.Fatal(err)
	}
	defer blocked.Close()
	res, err := blocked.Checkout(ctx, feature("viewer", "2.0", 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denials) != 1 || res.Denials[0].Reason != deviceproto.DenyModel {
		t.Fatalf("model denial: %+v", res.Denials)
	}
}

func TestSignatures(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	c := dial(t, srv, "dev-sig")
	res, err := c.Checkout(context.Background(), feature("cad", "1.0", 1))
	if err != nil {
		t.Fatal(err)
	}
	// A device keeps the signed form and checks it later with the
	// certificate from the welcome alone.
	key, err := deviceproto.IdentityKey(c.Welcome().Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if err := deviceproto.Verify(key, res.Signed); err != nil {
		t.Fatal(err)
	}
	tampered := res.Signed
	tampered.Payload = []byte(strings.Replace(string(res.Signed.Payload), `"count":1`, `"count":9`, 1))
	if string(tampered.Payload) == string(res.Signed.Payload) {
		t.Fatalf("payload has no count to tamper with: %s", res.Signed.Payload)
	}
	if err := deviceproto.Verify(key, tampered); !errors.Is(err, deviceproto.ErrBadSignature) {
		t.Fatalf("tampered payload: %v", err)
	}
	other := devicetest.NewIdentity(t)
	otherKey, _ := deviceproto.IdentityKey(other.Certificate)
	if err := deviceproto.Verify(otherKey, res.Signed); !errors.Is(err, deviceproto.ErrBadSignature) {
		t.Fatalf("verified with another key: %v", err)
	}

	// The pinned identity is checked at dial time.
	_, err = deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{
		TLS: srv.TLS, Hello: hello("dev-pin"), VerifyFingerprint: other.Fingerprint})
	if !errors.Is(err, deviceproto.ErrFingerprint) {
		t.Fatalf("wrong pin: %v", err)
	}
	pinned, err := deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{
		TLS: srv.TLS, Hello: hello("dev-pin"), VerifyFingerprint: strings.ToLower(srv.Identity.Fingerprint)})
	if err != nil {
		t.Fatal(err)
	}
	pinned.Close()
}

func TestTamperedResponseRefusedByClient(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	// A server in the middle that rewrites capability responses.
	ws, welcome := rawHello(t, srv, "dev-mitm")
	send(t, ws, deviceproto.TypeCapabilityRequest, 2, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("cad", "1.0", 1)}})
	env := read(t, ws)
	var signed deviceproto.Signed
	if err := json.Unmarshal(env.Body, &signed); err != nil {
		t.Fatal(err)
	}
	key, _ := deviceproto.IdentityKey(welcome.Certificate)
	if err := deviceproto.Verify(key, signed); err != nil {
		t.Fatal(err)
	}
	signed.Payload[len(signed.Payload)-2] ^= 1
	if err := deviceproto.Verify(key, signed); !errors.Is(err, deviceproto.ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
}

func TestPushOnRevokeAndDrop(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	srv.Apply(t, &core.LoadRights{Source: "extra", Sequence: 1, Lines: []core.FeatureLine{
		{Name: "extra", Version: version.MustParse("1.0"), Count: 5},
	}})
	c := dial(t, srv, "dev-push")
	ctx := context.Background()
	if _, err := c.Checkout(ctx, feature("extra", "1.0", 2)); err != nil {
		t.Fatal(err)
	}
	srv.Apply(t, &core.RemoveRights{Source: "extra"})
	push := <-c.Pushes()
	if push.Event != deviceproto.EventLeaseChanged || push.RequestID != 0 || len(push.Grants) != 1 ||
		push.Grants[0].Feature != "extra" || push.Grants[0].Count != 0 {
		t.Fatalf("push %+v", push.Payload)
	}
	if err := deviceproto.Verify(c.IdentityKey(), push.Signed); err != nil {
		t.Fatal(err)
	}

	if _, err := c.Checkout(ctx, feature("cad", "1.0", 1)); err != nil {
		t.Fatal(err)
	}
	srv.Apply(t, &core.SetProperty{Name: "server.allowDeviceDrop", Value: "true"})
	id, _ := hostid.Parse("dev-push", "STRING")
	srv.Apply(t, &core.DropDevice{Device: id})
	push = <-c.Pushes()
	if push.Event != deviceproto.EventDropped || len(push.Grants) != 1 || push.Grants[0].Count != 0 {
		t.Fatalf("drop push %+v", push.Payload)
	}
	_, err := c.Checkout(ctx, feature("cad", "1.0", 1))
	var pe *deviceproto.Error
	if !errors.As(err, &pe) || pe.Code != deviceproto.CodeHelloRequired {
		t.Fatalf("checkout after drop: %v", err)
	}
}

func TestNotifyPushesToConnectedDevice(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	c := dial(t, srv, "dev-notify")
	id, _ := hostid.Parse("dev-notify", "STRING")
	srv.Handler.Notify(core.Request{Command: &core.Tick{}}, core.Result{Changed: []core.Lease{
		{Device: id, Feature: "cad", Version: version.MustParse("1.0"), Count: 0},
	}})
	push := <-c.Pushes()
	if push.Grants[0].Feature != "cad" || push.Device.Value != "dev-notify" {
		t.Fatalf("push %+v", push.Payload)
	}
}

func waitUsed(t *testing.T, srv *devicetest.Server, name, v string, want int64) {
	t.Helper()
	var got int64
	for range 500 {
		if got = srv.Used(t, name, v); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s %s used %d, want %d", name, v, got, want)
}

func waitConnections(t *testing.T, srv *devicetest.Server, want int64) {
	t.Helper()
	var got int64
	for range 500 {
		if got = metric(t, srv, "tally_device_connections"); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d connections, want %d", got, want)
}

func TestReleaseOnDisconnect(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	ctx := context.Background()

	// Off (the default): counts stay with the device after it goes.
	c, err := deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello("dev-keep")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Checkout(ctx, feature("cad", "1.0", 2)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitConnections(t, srv, 0) // the disconnect is applied before the count drops

	srv.Apply(t, &core.SetProperty{Name: "licensing.releaseOnDisconnect", Value: "true"})
	c, err = deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello("dev-free")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Checkout(ctx, feature("cad", "1.0", 5)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 7 {
		t.Fatalf("used %d", got)
	}
	c.Close()
	waitUsed(t, srv, "cad", "1.0", 2)
}

func rawDial(t testing.TB, srv *devicetest.Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: srv.TLS}
	ws, _, err := d.Dial(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func send(t testing.TB, ws *websocket.Conn, typ string, id uint64, body any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	msg, _ := json.Marshal(deviceproto.Envelope{Type: typ, ID: id, Body: raw})
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, ws *websocket.Conn) deviceproto.Envelope {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var env deviceproto.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func readError(t testing.TB, ws *websocket.Conn) (uint64, string) {
	t.Helper()
	env := read(t, ws)
	if env.Type != deviceproto.TypeError {
		t.Fatalf("got %s %s, want an error", env.Type, env.Body)
	}
	var e deviceproto.Error
	json.Unmarshal(env.Body, &e)
	if e.Message == "" || strings.Contains(e.Message, "\n") {
		t.Fatalf("error message %q", e.Message)
	}
	return env.ID, e.Code
}

func rawHello(t testing.TB, srv *devicetest.Server, value string) (*websocket.Conn, deviceproto.Welcome) {
	t.Helper()
	ws := rawDial(t, srv)
	h := hello(value)
	h.Protocol = deviceproto.Protocol
	send(t, ws, deviceproto.TypeHello, 1, h)
	env := read(t, ws)
	if env.Type != deviceproto.TypeWelcome || env.ID != 1 {
		t.Fatalf("hello answered with %s %s", env.Type, env.Body)
	}
	var w deviceproto.Welcome
	if err := json.Unmarshal(env.Body, &w); err != nil {
		t.Fatal(err)
	}
	return ws, w
}

func TestBadInput(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{MaxMessageBytes: 4096})
	bystander := dial(t, srv, "dev-bystander")
	ctx := context.Background()
	check := func() {
		t.Helper()
		if _, err := bystander.Checkout(ctx, feature("viewer", "2.0", 1)); err != nil {
			t.Fatalf("bystander: %v", err)
		}
	}

	t.Run("before hello", func(t *testing.T) {
		ws := rawDial(t, srv)
		send(t, ws, deviceproto.TypeCapabilityRequest, 7, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("cad", "1.0", 1)}})
		if id, code := readError(t, ws); id != 7 || code != deviceproto.CodeHelloRequired {
			t.Fatalf("%d %s", id, code)
		}
		send(t, ws, deviceproto.TypeStatus, 8, struct{}{})
		if _, code := readError(t, ws); code != deviceproto.CodeHelloRequired {
			t.Fatal(code)
		}
	})
	t.Run("malformed and unknown", func(t *testing.T) {
		ws, _ := rawHello(t, srv, "dev-bad")
		for _, tc := range []struct {
			frame string
			code  string
		}{
			{`{not json`, deviceproto.CodeMalformed},
			{`[1,2,3]`, deviceproto.CodeMalformed},
			{`{"type":"teleport","id":3,"body":{}}`, deviceproto.CodeUnknownType},
			{`{"type":"welcome","id":4,"body":{}}`, deviceproto.CodeUnknownType},
			{`{"type":"capabilityRequest","id":5,"body":{"features":"cad"}}`, deviceproto.CodeMalformed},
			{`{"type":"capabilityRequest","id":6,"body":{"features":[]}}`, deviceproto.CodeInvalidRequest},
			{`{"type":"capabilityRequest","id":7,"body":{"features":[{"name":"cad","version":"x.y","count":1}]}}`, deviceproto.CodeInvalidVersion},
			{`{"type":"capabilityRequest","id":8,"body":{"features":[{"name":"cad","version":"1.0","count":-1}]}}`, deviceproto.CodeInvalidCount},
			{`{"type":"renew","id":9,"body":{"features":[{"name":"","version":"1.0","count":1}]}}`, deviceproto.CodeInvalidFeature},
			{`{"type":"return","id":10,"body":{"features":[{"name":"cad","version":"1.0"},{"name":"cad","version":"1"}]}}`, deviceproto.CodeInvalidRequest},
			{`{"type":"hello","id":11,"body":{"protocol":"tally-device/1","hostIds":[{"value":"other","type":"STRING"}]}}`, deviceproto.CodeDeviceMismatch},
			{`{"type":"hello","id":12,"body":{"protocol":"tally-device/1","hostIds":[{"value":"x","type":"NOPE"}]}}`, deviceproto.CodeInvalidDevice},
		} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			if _, code := readError(t, ws); code != tc.code {
				t.Errorf("%s: code %s, want %s", tc.frame, code, tc.code)
			}
		}
		// The connection still works.
		send(t, ws, deviceproto.TypeStatus, 20, nil)
		if env := read(t, ws); env.Type != deviceproto.TypeStatus || env.ID != 20 {
			t.Fatalf("status: %s %s", env.Type, env.Body)
		}
		check()
	})
	t.Run("wrong protocol", func(t *testing.T) {
		ws := rawDial(t, srv)
		h := hello("dev-old")
		h.Protocol = "tally-device/0"
		send(t, ws, deviceproto.TypeHello, 1, h)
		if _, code := readError(t, ws); code != deviceproto.CodeUnsupportedProtocol {
			t.Fatal(code)
		}
		_, _, err := ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseProtocolError) {
			t.Fatalf("after unsupported protocol: %v", err)
		}
		check()
	})
	t.Run("oversized", func(t *testing.T) {
		ws, _ := rawHello(t, srv, "dev-big")
		big := fmt.Sprintf(`{"type":"status","id":1,"body":{"pad":%q}}`, strings.Repeat("x", 8192))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
			t.Fatal(err)
		}
		_, _, err := ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("after an oversized frame: %v", err)
		}
		check()
	})
	t.Run("client closes mid-request", func(t *testing.T) {
		ws, _ := rawHello(t, srv, "dev-gone")
		send(t, ws, deviceproto.TypeCapabilityRequest, 2, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("viewer", "2.0", 1)}})
		ws.Close()
		check()
	})
}

func TestRateLimit(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := devicetest.NewServer(t, device.Config{MaxRate: 3, Now: clock})
	ws, _ := rawHello(t, srv, "dev-fast") // takes one token
	limited := 0
	for i := range 5 {
		send(t, ws, deviceproto.TypeStatus, uint64(10+i), nil)
	}
	for range 5 {
		env := read(t, ws)
		if env.Type == deviceproto.TypeError {
			var e deviceproto.Error
			json.Unmarshal(env.Body, &e)
			if e.Code != deviceproto.CodeRateLimited {
				t.Fatalf("error %+v", e)
			}
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 5 rate limited, want 3 (burst 3, hello took one)", limited)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	send(t, ws, deviceproto.TypeStatus, 30, nil)
	if env := read(t, ws); env.Type != deviceproto.TypeStatus {
		t.Fatalf("after a second: %s %s", env.Type, env.Body)
	}
}

func TestSlowReaderIsClosed(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{SendQueue: 8, WriteTimeout: 2 * time.Second})
	bystander := dial(t, srv, "dev-reads")
	ws, _ := rawHello(t, srv, "dev-sleeps") // never reads again
	id, _ := hostid.Parse("dev-sleeps", "STRING")
	other, _ := hostid.Parse("dev-reads", "STRING")
	lease := func(d hostid.HostID) core.Result {
		return core.Result{Changed: []core.Lease{{Device: d, Feature: "cad", Version: version.MustParse("1.0")}}}
	}
	closed := false
	for i := 0; i < 200_000 && !closed; i++ {
		srv.Handler.Notify(core.Request{Command: &core.Tick{}}, lease(id))
		if i%100 == 99 {
			closed = metric(t, srv, "tally_device_send_overflows_total") > 0
			if !closed {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if !closed {
		t.Fatal("the connection that never reads was not closed")
	}
	_ = ws
	// The reading device still gets its pushes and answers.
	srv.Handler.Notify(core.Request{Command: &core.Tick{}}, lease(other))
	if p := <-bystander.Pushes(); p.Grants[0].Feature != "cad" {
		t.Fatalf("push %+v", p.Payload)
	}
	if _, err := bystander.Checkout(context.Background(), feature("cad", "1.0", 1)); err != nil {
		t.Fatal(err)
	}
}

func metric(t testing.TB, srv *devicetest.Server, name string) int64 {
	t.Helper()
	var b strings.Builder
	srv.Handler.WriteMetrics(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no metric %s in\n%s", name, b.String())
	return 0
}

func TestManyConnections(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	const n = 300
	ctx := context.Background()
	clients := make([]*deviceproto.Client, n)
	dials := make(chan struct{}, 16) // handshakes at once; all connections stay open together
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dials <- struct{}{}
			defer func() { <-dials }()
			c, err := deviceproto.Dial(ctx, srv.URL, deviceproto.ClientConfig{
				TLS: srv.TLS, Hello: hello(fmt.Sprintf("many-%d", i)), HandshakeTimeout: time.Minute})
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if got := metric(t, srv, "tally_device_connections"); got != n {
		t.Errorf("%d connections open, want %d", got, n)
	}
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if _, err := c.Checkout(ctx, feature("viewer", "2.0", 1)); err != nil {
				errs <- err
				return
			}
			if _, err := c.Return(ctx, deviceproto.FeatureRef{Name: "viewer", Version: "2.0"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.Used(t, "viewer", "2.0"); got != 0 {
		t.Fatalf("viewer used %d after every device returned", got)
	}
	c := dial(t, srv, "after-many")
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionLimitAndClose(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{MaxConnections: 2})
	a := dial(t, srv, "lim-a")
	dial(t, srv, "lim-b")
	_, err := deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{TLS: srv.TLS, Hello: hello("lim-c")})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("third connection: %v", err)
	}
	if metric(t, srv, "tally_device_connections_rejected_total") != 1 {
		t.Fatal("rejection not counted")
	}
	srv.Handler.Close()
	<-a.Done()
	if err := a.Err(); !strings.Contains(err.Error(), "1001") {
		t.Fatalf("after Close: %v", err)
	}
}

func TestClientRefusesWrongTLS(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, err := deviceproto.Dial(context.Background(), srv.URL, deviceproto.ClientConfig{TLS: &tls.Config{}, Hello: hello("dev-tls")})
	if err == nil {
		t.Fatal("dialled a server with an untrusted certificate")
	}
}

func TestPipelinedRequestsOfOneFeatureApplyInOrder(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	ws, _ := rawHello(t, srv, "dev-pipe")
	for i := range 20 {
		send(t, ws, deviceproto.TypeCapabilityRequest, uint64(100+2*i), deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("cad", "1.0", int64(1+i%5))}})
		send(t, ws, deviceproto.TypeReturn, uint64(101+2*i), deviceproto.ReturnRequest{Features: []deviceproto.FeatureRef{{Name: "cad", Version: "1.0"}}})
	}
	send(t, ws, deviceproto.TypeStatus, 999, nil)
	for range 41 {
		env := read(t, ws)
		if env.Type == deviceproto.TypeError {
			t.Fatalf("error %s", env.Body)
		}
		if env.ID == 999 {
			var st deviceproto.Status
			json.Unmarshal(env.Body, &st)
			if len(st.Leases) != 0 {
				t.Fatalf("status after pipelined checkout and return: %+v", st)
			}
		}
	}
	if got := srv.Used(t, "cad", "1.0"); got != 0 {
		t.Fatalf("used %d", got)
	}
}

// TestConnected: a device is connected from its hello until its last
// connection closes.
func TestConnected(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	id := sid("online-1")
	if srv.Handler.Connected(id) {
		t.Fatal("connected before any hello")
	}
	c := mustDialKey(t, srv, "online-1", nil)
	// The welcome is queued before the connection is registered: the
	// client may read it first.
	for i := 0; !srv.Handler.Connected(id); i++ {
		if i == 1000 {
			t.Fatal("not connected after hello")
		}
		time.Sleep(time.Millisecond)
	}
	c.Close()
	for i := 0; srv.Handler.Connected(id); i++ {
		if i == 1000 {
			t.Fatal("still connected after the connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOnlineChanged: the callback runs when a device's first connection is
// admitted and when its last one closes, and not for a second connection.
func TestOnlineChanged(t *testing.T) {
	changes := make(chan struct{}, 16)
	srv := devicetest.NewServer(t, device.Config{OnlineChanged: func() { changes <- struct{}{} }})
	id := sid("online-2")
	wait := func(what string, connected bool, devices int) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			t.Fatalf("no OnlineChanged when %s", what)
		}
		if srv.Handler.Connected(id) != connected || srv.Handler.ConnectedDevices() != devices {
			t.Fatalf("%s: Connected %v, ConnectedDevices %d", what, srv.Handler.Connected(id), srv.Handler.ConnectedDevices())
		}
	}
	first := mustDialKey(t, srv, "online-2", nil)
	wait("the first connection is admitted", true, 1)
	second := mustDialKey(t, srv, "online-2", nil)
	second.Close()
	first.Close()
	wait("the last connection closed", false, 0)
	select {
	case <-changes:
		t.Fatal("OnlineChanged for a device that already was online")
	default:
	}
}

// TestNewConnectionSupersedes: once a device asked for a feature on a new
// connection, a request for it on an earlier one changes nothing and is
// answered superseded, until that connection says hello again. Other
// features stay with the connection that asks for them.
func TestNewConnectionSupersedes(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	checkout := func(ws *websocket.Conn, id uint64, count int64) {
		t.Helper()
		send(t, ws, deviceproto.TypeCapabilityRequest, id, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("cad", "1.0", count)}})
	}
	granted := func(ws *websocket.Conn, id uint64) {
		t.Helper()
		if env := read(t, ws); env.Type != deviceproto.TypeCapabilityResponse || env.ID != id {
			t.Fatalf("request %d answered with %s %s", id, env.Type, env.Body)
		}
	}
	first, _ := rawHello(t, srv, "dev-twice")
	checkout(first, 10, 2)
	granted(first, 10)

	second, _ := rawHello(t, srv, "dev-twice")
	checkout(second, 10, 1)
	granted(second, 10)

	checkout(first, 11, 3)
	if id, code := readError(t, first); id != 11 || code != deviceproto.CodeSuperseded {
		t.Fatalf("request on the earlier connection: %d %s", id, code)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 1 {
		t.Fatalf("used %d after the earlier connection's request, want the newer connection's 1", got)
	}

	h := hello("dev-twice")
	h.Protocol = deviceproto.Protocol
	send(t, first, deviceproto.TypeHello, 12, h)
	if env := read(t, first); env.Type != deviceproto.TypeWelcome {
		t.Fatalf("hello again answered with %s %s", env.Type, env.Body)
	}
	checkout(first, 13, 3)
	granted(first, 13)
	checkout(second, 11, 0)
	if _, code := readError(t, second); code != deviceproto.CodeSuperseded {
		t.Fatalf("the connection superseded in turn answered %s", code)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 3 {
		t.Fatalf("used %d", got)
	}
	// The superseded connection goes on with a feature the newer one has
	// not asked for.
	send(t, second, deviceproto.TypeCapabilityRequest, 12, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{feature("viewer", "1.5", 1)}})
	granted(second, 12)
}

// TestConcurrentRequestsOfOneClient: replies the server writes to a
// connection together arrive as separate messages, each signed.
func TestConcurrentRequestsOfOneClient(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	c := dial(t, srv, "dev-burst")
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Checkout(context.Background(), feature("big", "1.0", int64(1+i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := c.Return(context.Background(), deviceproto.FeatureRef{Name: "big", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Used(t, "big", "1.0"); got != 0 {
		t.Fatalf("used %d after the return", got)
	}
}

// TestKeepalive: the server pings an idle device a few times per
// ReadTimeout, so a device that answers stays connected through many
// timeouts, while one that stops answering is closed.
func TestKeepalive(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := devicetest.NewServer(t, device.Config{ReadTimeout: timeout})
	ws, _ := rawHello(t, srv, "dev-idle")
	pings := make(chan struct{}, 100)
	ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	// Reading runs the ping handler; the device sends nothing else.
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for n := 0; n < 10; n++ { // ten pings: over three read timeouts
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("the answering device was disconnected after %d pings: %v", n, err)
		case <-deadline:
			t.Fatalf("%d pings in 30 s", n)
		}
	}

	// A device that does not answer (its reader stopped: no pongs) is closed.
	silent, _ := rawHello(t, srv, "dev-silent")
	waitConnections(t, srv, 2)
	_ = silent
	waitConnections(t, srv, 1)
	select {
	case err := <-readErr:
		t.Fatalf("the answering device was disconnected: %v", err)
	default:
	}
}
