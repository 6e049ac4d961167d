package transport

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

// fastEvents shortens the hub's timings for tests.
func fastEvents(s *Server) {
	s.hub.timing.coalesce = 20 * time.Millisecond
	s.hub.timing.authTimeout = 200 * time.Millisecond
	s.hub.timing.expiryCheck = 10 * time.Millisecond
}

// eventsEnv is a test environment whose store tells the server what it
// applied, as a node does.
func eventsEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	e := newTestEnv(t, opts...)
	fastEvents(e.server)
	e.store.observeWith(e.server.Notify)
	t.Cleanup(e.server.Close)
	return e
}

// dialEvents opens the events WebSocket of e with the given Origin ("" for
// none).
func (e *testEnv) dialEvents(origin string) (*websocket.Conn, *http.Response, error) {
	tr := e.client.Transport.(*http.Transport)
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, NextProtos: []string{"http/1.1"}},
		NetDialContext:   tr.DialContext,
		HandshakeTimeout: 10 * time.Second,
	}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := d.Dial(strings.Replace(e.url, "https://", "wss://", 1)+"/api/v1/events", h)
	if err == nil {
		e.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// event is any message of the events WebSocket.
type event struct {
	Type   string      `json:"type"`
	User   string      `json:"user"`
	Roles  []core.Role `json:"roles"`
	Topics []string    `json:"topics"`
	Code   string      `json:"code"`
	Error  string      `json:"error"`
}

// readEvent reads the next message, waiting at most 10 s.
func readEvent(t *testing.T, ws *websocket.Conn) event {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading an event: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d", typ)
	}
	var ev event
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", data, err)
	}
	return ev
}

// wantClosed reads until the server closes the connection, and checks the
// close code (0: the socket closed without one).
func wantClosed(t *testing.T, ws *websocket.Conn, code int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err == nil {
			t.Fatalf("a message instead of the close: %s", data)
		}
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			if ce.Code != code {
				t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
			}
		case code != 0:
			t.Fatalf("read %v, want a close frame %d", err, code)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server did not close the connection")
		}
		return
	}
}

// openEvents dials and sends token; it returns the connection after ready.
func (e *testEnv) openEvents(t *testing.T, token string) (*websocket.Conn, event) {
	t.Helper()
	ws, _, err := e.dialEvents(e.url)
	if err != nil {
		t.Fatal(err)
	}
	sendToken(t, ws, token)
	ev := readEvent(t, ws)
	if ev.Type != "ready" {
		t.Fatalf("first event %+v, want ready", ev)
	}
	return ws, ev
}

func sendToken(t *testing.T, ws *websocket.Conn, token string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": token})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) eventsGauge() string {
	var buf bytes.Buffer
	e.server.WriteMetrics(&buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "tally_events_connections ") {
			return strings.TrimPrefix(line, "tally_events_connections ")
		}
	}
	return "missing"
}

// waitGauge polls the connections gauge until it reads want.
func (e *testEnv) waitGauge(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.eventsGauge() != want {
		if time.Now().After(deadline) {
			t.Fatalf("tally_events_connections %s, want %s", e.eventsGauge(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsReady(t *testing.T) {
	e := eventsEnv(t)
	_, ev := e.openEvents(t, e.login(testPassword))
	if ev.User != "admin" || !slices.Equal(ev.Roles, []core.Role{core.RoleAdmin}) {
		t.Errorf("ready %+v", ev)
	}
	e.waitGauge(t, "1")

	t.Run("no Origin", func(t *testing.T) {
		ws, _, err := e.dialEvents("")
		if err != nil {
			t.Fatal(err)
		}
		sendToken(t, ws, e.login(testPassword))
		if ev := readEvent(t, ws); ev.Type != "ready" {
			t.Errorf("%+v", ev)
		}
	})
	t.Run("anonymous on loopback, security off", func(t *testing.T) {
		e.token = e.login(testPassword)
		if r := e.do("PUT", "/api/v1/properties/security.enabled", "application/json", `{"value":"false"}`, true); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		defer e.do("PUT", "/api/v1/properties/security.enabled", "application/json", `{"value":"true"}`, true)
		_, ev := e.openEvents(t, "")
		if ev.User != anonymousName || !slices.Equal(ev.Roles, []core.Role{core.RoleAdmin}) {
			t.Errorf("ready %+v", ev)
		}
	})
}

func TestEventsRefused(t *testing.T) {
	e := eventsEnv(t)
	w := &accessWorld{store: e.store}
	for _, c := range []struct {
		name  string
		send  func(t *testing.T, ws *websocket.Conn)
		code  string
		close int
	}{
		{"bad token", func(t *testing.T, ws *websocket.Conn) { sendToken(t, ws, "not-a-token") }, "unauthorized", websocket.ClosePolicyViolation},
		{"forged token", func(t *testing.T, ws *websocket.Conn) {
			sendToken(t, ws, w.mint(t, bytes.Repeat([]byte{9}, core.TokenKeyLen), "admin", 0, t0.Add(time.Hour)))
		}, "unauthorized", websocket.ClosePolicyViolation},
		{"expired token", func(t *testing.T, ws *websocket.Conn) { sendToken(t, ws, w.mint(t, w.key(), "admin", 0, t0)) }, "unauthorized", websocket.ClosePolicyViolation},
		{"no token, security on", func(t *testing.T, ws *websocket.Conn) { sendToken(t, ws, "") }, "unauthorized", websocket.ClosePolicyViolation},
		{"not JSON", func(t *testing.T, ws *websocket.Conn) { ws.WriteMessage(websocket.TextMessage, []byte("Bearer x")) }, "bad_message", websocket.ClosePolicyViolation},
		{"unknown field", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"token":"x","user":"admin"}`))
		}, "bad_message", websocket.ClosePolicyViolation},
		{"binary", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.BinaryMessage, []byte(`{"token":"x"}`))
		}, "bad_message", websocket.ClosePolicyViolation},
		{"nothing within the deadline", func(*testing.T, *websocket.Conn) {}, "auth_timeout", websocket.ClosePolicyViolation},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws, _, err := e.dialEvents(e.url)
			if err != nil {
				t.Fatal(err)
			}
			c.send(t, ws)
			ev := readEvent(t, ws)
			if ev.Type != "error" || ev.Code != c.code || ev.Error == "" {
				t.Fatalf("event %+v, want error %s", ev, c.code)
			}
			wantClosed(t, ws, c.close)
		})
	}
	e.waitGauge(t, "0")
}

func TestEventsForeignOrigin(t *testing.T) {
	e := eventsEnv(t)
	for _, origin := range []string{"https://evil.example", "https://localhost:1", "null", "https://127.0.0.1" + strings.TrimPrefix(e.url, "https://localhost")} {
		_, resp, err := e.dialEvents(origin)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %s: %v %v", origin, err, resp)
		}
		var eb errorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Code != "forbidden_origin" {
			t.Errorf("Origin %s: body %+v %v", origin, eb, err)
		}
	}
	// Not a WebSocket at all.
	wantError(t, e.do("GET", "/api/v1/events", "", "", false), http.StatusBadRequest, "not_websocket")
}

// TestEventsTopics: what an administrator or a device changes reaches the
// events connections as the topics of the views it changed.
func TestEventsTopics(t *testing.T) {
	e := eventsEnv(t)
	e.token = e.login(testPassword)
	ws, _ := e.openEvents(t, e.token)
	want := func(what string, topics ...string) {
		t.Helper()
		ev := readEvent(t, ws)
		slices.Sort(topics)
		got := slices.Clone(ev.Topics)
		slices.Sort(got)
		if ev.Type != "changed" || !slices.Equal(got, topics) {
			t.Fatalf("after %s: %+v, want changed %v", what, ev, topics)
		}
	}

	e.store.mustApply(t, &core.Checkout{Device: testMAC(2), Feature: "cad", Version: version.MustParse("1.0"), Count: 1})
	want("a checkout", "features", "devices", "pools", "reservations")

	if r := e.do("PUT", "/api/v1/properties/server.pageSize", "application/json", `{"value":"7"}`, true); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	want("a property change", "properties", "audit")

	if r := e.do("POST", "/api/v1/reservations", "application/json", reservationsJSON, true); r.status != http.StatusNoContent {
		t.Fatalf("%d %s", r.status, r.body)
	}
	want("a reservation import", "features", "devices", "pools", "reservations", "audit")

	e.store.mustApply(t, &core.Tick{})
	e.store.mustApply(t, &core.Hello{Device: core.DeviceInfo{ID: testMAC(9), Type: core.DevicePhysical}})
	want("a tick that changed nothing, then a hello", "devices")

	e.server.OnlineChanged()
	want("a device online", "devices")
	e.server.ClusterChanged()
	want("a cluster change", "cluster", "licensing-id")

	// A logout ends the token: the connection is told and closed.
	if r := e.do("POST", "/api/v1/auth/logout", "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if ev := readEvent(t, ws); ev.Type != "error" || ev.Code != "unauthorized" {
		t.Fatalf("after logout: %+v", ev)
	}
	wantClosed(t, ws, websocket.ClosePolicyViolation)
}

func TestTopicsOf(t *testing.T) {
	lease := core.Lease{Device: testMAC(1), Feature: "cad"}
	for _, c := range []struct {
		name string
		req  core.Request
		res  core.Result
		want topicSet
	}{
		{"idle tick", core.Request{Command: &core.Tick{}}, core.Result{}, 0},
		{"tick that revoked a lease", core.Request{Command: &core.Tick{}}, core.Result{Changed: []core.Lease{lease}}, leaseTopics},
		{"checkout", core.Request{Command: &core.Checkout{}}, core.Result{}, leaseTopics},
		{"denied checkout", core.Request{Command: &core.Checkout{}}, core.Result{Denied: core.DenyInsufficient}, 0},
		{"duplicate", core.Request{Command: &core.Checkout{}}, core.Result{Duplicate: true}, 0},
		{"disconnect freeing leases", core.Request{Command: &core.Disconnect{}}, core.Result{Changed: []core.Lease{lease}}, leaseTopics},
		{"audited key", core.Request{Command: &core.Audited{Command: &core.CreateKeys{}}}, core.Result{}, topicKeys | topicAudit},
		{"audited drop", core.Request{Command: &core.Audited{Command: &core.DropDevice{}}}, core.Result{Changed: []core.Lease{lease}}, leaseTopics | topicAudit},
		{"rights", core.Request{Command: &core.LoadRights{}}, core.Result{}, rightsTopics},
		{"onboard", core.Request{Command: &core.Onboard{}}, core.Result{}, topicKeys | topicDevices},
		{"restore", core.Request{Command: &core.Audited{Command: &core.RestoreBackup{}}}, core.Result{}, stateTopics},
		{"sync", core.Request{Command: &core.BeginSync{}}, core.Result{}, topicOffline},
		{"client key", core.Request{Command: &core.SetClientKey{}}, core.Result{}, topicClientKey},
		{"licensing ID", core.Request{Command: &core.SetMainLicensingID{}}, core.Result{}, topicLicensingID},
		{"join token", core.Request{Command: &core.CreateJoinToken{}}, core.Result{}, topicCluster},
		{"user", core.Request{Command: &core.SetUserRoles{}}, core.Result{}, topicUsers},
	} {
		if got := topicsOf(c.req, c.res); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got.names(), c.want.names())
		}
	}
	// The table names only command types core knows.
	for typ := range commandTopics {
		b, _ := json.Marshal(map[string]any{"session": 1, "seq": 1, "at": 0, "type": typ})
		if _, err := core.DecodeRequest(b); errors.Is(err, core.ErrUnknownCommand) {
			t.Errorf("commandTopics names %q, which is not a command", typ)
		}
	}
	if got := (topicFeatures | topicClientKey | topicLicensingID).names(); !slices.Equal(got, []string{"features", "licensing-id", "client-key"}) {
		t.Errorf("names %v", got)
	}
}

// TestEventsCoalesce: many changes in a short time reach a connection as
// few messages naming their union.
func TestEventsCoalesce(t *testing.T) {
	e := eventsEnv(t)
	e.server.hub.timing.coalesce = 300 * time.Millisecond
	ws, _ := e.openEvents(t, e.login(testPassword))
	s := e.server
	// The first change after a quiet time goes out at once.
	s.Notify(core.Request{Command: &core.Hello{}}, core.Result{})
	if ev := readEvent(t, ws); !slices.Equal(ev.Topics, []string{"devices"}) {
		t.Fatalf("first: %+v", ev)
	}
	// What follows within the interval waits for it, and goes as one.
	for range 100 {
		s.Notify(core.Request{Command: &core.Hello{}}, core.Result{})
		s.Notify(core.Request{Command: &core.CreateKeys{}}, core.Result{})
		s.Notify(core.Request{Command: &core.Audited{Command: &core.SetProperty{}}}, core.Result{})
	}
	start := time.Now()
	ev := readEvent(t, ws)
	if want := []string{"devices", "properties", "keys", "audit"}; !slices.Equal(ev.Topics, want) {
		t.Fatalf("coalesced: %+v, want %v", ev, want)
	}
	// Nothing else was pending: the next change comes alone.
	s.ClusterChanged()
	ev = readEvent(t, ws)
	if want := []string{"cluster", "licensing-id"}; !slices.Equal(ev.Topics, want) {
		t.Fatalf("after: %+v, want %v", ev, want)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("two changed messages %s apart; the interval is 300ms", d)
	}
}

// stallListener hands out connections whose writes block, once stall is
// set, until they are closed: a client that stopped reading and whose
// buffers are full.
type stallListener struct {
	net.Listener
	stall *atomic.Bool
}

func (l stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, stall: l.stall, closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	stall  *atomic.Bool
	once   sync.Once
	closed chan struct{}
}

func (c *stallConn) Write(b []byte) (int, error) {
	if c.stall.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestEventsSlowClient: a client that does not take its messages is
// disconnected when its send queue fills, and Notify never waits for it.
func TestEventsSlowClient(t *testing.T) {
	e := eventsEnv(t)
	e.server.hub.timing.coalesce = 0
	var stall atomic.Bool
	hs := httptest.NewUnstartedServer(e.server.Handler())
	hs.Listener = stallListener{Listener: hs.Listener, stall: &stall}
	hs.Start()
	t.Cleanup(hs.Close)
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(hs.URL, "http://", "ws://", 1)+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sendToken(t, ws, e.login(testPassword))
	if ev := readEvent(t, ws); ev.Type != "ready" {
		t.Fatalf("%+v", ev)
	}
	e.waitGauge(t, "1")
	stall.Store(true)

	// Notify from another goroutine, so that a Notify that blocked would
	// show as a timeout here rather than hang the test.
	notified := make(chan struct{})
	dropped := make(chan struct{})
	go func() {
		defer close(notified)
		for i := 0; ; i++ {
			e.server.Notify(core.Request{Command: &core.Hello{}}, core.Result{})
			if i%16 == 0 && e.eventsGauge() == "0" {
				close(dropped)
				return
			}
			runtime.Gosched() // let the flushes run
		}
	}()
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow client was not dropped (or Notify blocked)")
	}
	<-notified
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the client's connection is still open")
			}
			break
		}
	}
}

// TestEventsTokenExpiry: the connection ends when its token expires by the
// server's clock.
func TestEventsTokenExpiry(t *testing.T) {
	e := eventsEnv(t)
	ws, _ := e.openEvents(t, e.login(testPassword))
	e.clock.advance(59 * time.Minute)
	e.server.ClusterChanged()
	if ev := readEvent(t, ws); ev.Type != "changed" {
		t.Fatalf("before expiry: %+v", ev)
	}
	e.clock.advance(time.Minute) // security.tokenDuration is 1h
	ev := readEvent(t, ws)
	if ev.Type != "error" || ev.Code != "token_expired" {
		t.Fatalf("at expiry: %+v", ev)
	}
	wantClosed(t, ws, websocket.ClosePolicyViolation)
	e.waitGauge(t, "0")
}

// TestEventsShutdown: Close tells every connection and closes it, and
// refuses new ones.
func TestEventsShutdown(t *testing.T) {
	e := eventsEnv(t)
	token := e.login(testPassword)
	a, _ := e.openEvents(t, token)
	b, _ := e.openEvents(t, token)
	e.waitGauge(t, "2")
	done := make(chan struct{})
	go func() { e.server.Close(); close(done) }()
	for _, ws := range []*websocket.Conn{a, b} {
		if ev := readEvent(t, ws); ev.Type != "error" || ev.Code != "shutting_down" {
			t.Fatalf("%+v", ev)
		}
		wantClosed(t, ws, websocket.CloseGoingAway)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if g := e.eventsGauge(); g != "0" {
		t.Errorf("gauge %s after Close", g)
	}
	_, resp, err := e.dialEvents(e.url)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %v %v", err, resp)
	}
	// Notify after Close has no one to tell, and returns.
	e.server.Notify(core.Request{Command: &core.Hello{}}, core.Result{})
}
