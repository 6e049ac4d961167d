package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/strictjson"
)

// The events WebSocket, GET /api/v1/events, tells the admin UI which of its
// views may have changed, so that it reloads them instead of polling. A
// browser cannot put an Authorization header on a WebSocket, so the
// connection opens without one and its first message is the token:
//
//	client: {"token":"<bearer token>"}          (within 10 s)
//	server: {"type":"ready","user":"admin","roles":["ADMIN"]}
//	server: {"type":"changed","topics":["devices","features"]}   (repeated)
//	server: {"type":"error","code":"token_expired","error":"…"}  (then a close)
//
// The token is checked as every request's is (checkToken); a refused one
// gets an error message and a close (1008). Topic names carry no data, so
// every user receives every topic; the UI then reads the views it may read.
// "changed" messages are coalesced: at most one per connection every
// 250 ms, naming the union of the topics raised since the last one. The
// connection ends when the token expires, when a change of users or
// properties makes it invalid (logout, password change, lost role,
// security re-enabled), when the client stops answering pings, when it
// falls behind its bounded send queue, and at shutdown.

// topicSet is a set of event topics, one bit each.
type topicSet uint16

// The topics, one per group of views of the UI.
const (
	topicFeatures topicSet = 1 << iota
	topicDevices
	topicPools
	topicReservations
	topicProperties
	topicKeys
	topicUsers
	topicAudit
	topicCluster
	topicLicensingID
	topicOffline
	topicDiscovery
	topicClientKey
	numTopics = iota
)

// topicNames are the topics' names on the wire, in bit order.
var topicNames = [numTopics]string{
	"features", "devices", "pools", "reservations", "properties", "keys", "users",
	"audit", "cluster", "licensing-id", "offline", "discovery", "client-key",
}

// Groups of topics.
const (
	// leaseTopics are the views a lease shows in: counts used, served and
	// consumed features, pool use, reservation status.
	leaseTopics = topicFeatures | topicDevices | topicPools | topicReservations
	// rightsTopics are the views rights change: the lease views (a lease
	// may move, shrink or end) and properties (producer locks).
	rightsTopics = leaseTopics | topicProperties
	// stateTopics are the views of the replicated state.
	stateTopics = rightsTopics | topicKeys | topicUsers | topicAudit | topicLicensingID | topicOffline | topicClientKey
)

// names lists the topics of t in bit order.
func (t topicSet) names() []string {
	out := make([]string, 0, numTopics)
	for i, name := range topicNames {
		if t&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// commandTopics is the one table of what an applied command may change, as
// the UI's views show it, by command type. A command it does not name
// raises every topic of the state, so a new command cannot leave a view
// stale. Beside the table, topicsOf adds the lease topics when leases
// changed (Result.Changed), "audit" for an audited command, and nothing
// for a duplicate or a denied checkout.
var commandTopics = map[string]topicSet{
	"tick":               0, // what it frees or revokes is in Result.Changed
	"hello":              topicDevices,
	"checkout":           leaseTopics,
	"disconnect":         topicDevices,
	"dropDevice":         topicDevices,
	"loadRights":         rightsTopics,
	"removeRights":       rightsTopics,
	"setModel":           leaseTopics,
	"deleteModel":        leaseTopics,
	"setReservations":    leaseTopics,
	"deleteReservations": leaseTopics,
	"setProperty":        topicProperties,
	"createKeys":         topicKeys,
	"setKeyActive":       topicKeys,
	"setKeyDescription":  topicKeys,
	"deleteKey":          topicKeys,
	"onboard":            topicKeys | topicDevices,
	"setClientKey":       topicClientKey,
	"setMainLicensingId": topicLicensingID,
	"restoreBackup":      stateTopics,
	"createUser":         topicUsers,
	"setUserRoles":       topicUsers,
	"setPassword":        topicUsers,
	"deleteUser":         topicUsers,
	"logout":             topicUsers,
	"setTokenKey":        topicUsers,
	"setClusterCa":       topicCluster,
	"createJoinToken":    topicCluster,
	"deleteJoinToken":    topicCluster,
	"useJoinToken":       topicCluster,
	"beginSync":          topicOffline,
	"completeSync":       rightsTopics | topicOffline,
}

// topicsOf returns the topics an applied request raises.
func topicsOf(req core.Request, res core.Result) topicSet {
	if res.Duplicate || req.Command == nil {
		return 0
	}
	var t topicSet
	cmd := req.Command
	if a, ok := cmd.(*core.Audited); ok && a.Command != nil {
		t |= topicAudit
		cmd = a.Command
	}
	if res.Denied == core.NotDenied {
		if ct, ok := commandTopics[cmd.Type()]; ok {
			t |= ct
		} else {
			t |= stateTopics
		}
	}
	if len(res.Changed) > 0 {
		t |= leaseTopics
	}
	return t
}

// Notify tells the events connections what an applied request changed. The
// node calls it for every request it applies, in log order; it does not
// block.
func (s *Server) Notify(req core.Request, res core.Result) { s.hub.raise(topicsOf(req, res)) }

// ClusterChanged tells the events connections that the cluster's members,
// leader or this node's role changed; tallyd calls it when it sees one.
func (s *Server) ClusterChanged() { s.hub.raise(topicCluster | topicLicensingID) }

// OnlineChanged tells the events connections that a device came online or
// went offline on this node (device.Config.OnlineChanged).
func (s *Server) OnlineChanged() { s.hub.raise(topicDevices) }

// Timings of the events connections.
const (
	eventsCoalesce     = 250 * time.Millisecond
	eventsAuthTimeout  = 10 * time.Second
	eventsPingInterval = 30 * time.Second
	eventsWriteTimeout = 10 * time.Second
	// eventsExpiryCheck is how often a connection compares its token's
	// expiry with Config.Now.
	eventsExpiryCheck = time.Second
	// eventsSendQueue bounds the messages waiting to be written to one
	// connection; a client that lets it fill is disconnected.
	eventsSendQueue = 16
	// maxEventMessage bounds what a client may send (its token).
	maxEventMessage = 4 << 10
	// maxEventConns bounds the open events connections, those still
	// waiting for their token included; beyond it the upgrade is refused
	// with 503. Administrators' browsers need a handful.
	maxEventConns = 1024
)

// eventTimings are the hub's timings; tests shorten them.
type eventTimings struct {
	coalesce, authTimeout, ping, write, expiryCheck time.Duration
	queue                                           int
}

// eventHub holds the open events connections.
type eventHub struct {
	timing   eventTimings
	now      func() time.Time
	log      *slog.Logger
	upgrader websocket.Upgrader
	// ctx bounds the store reads of connections; close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	open    int // connections admitted, upgrading ones included
	conns   map[*eventConn]struct{}
	serving sync.WaitGroup
}

func newEventHub(now func() time.Time, log *slog.Logger) *eventHub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &eventHub{
		timing: eventTimings{coalesce: eventsCoalesce, authTimeout: eventsAuthTimeout, ping: eventsPingInterval,
			write: eventsWriteTimeout, expiryCheck: eventsExpiryCheck, queue: eventsSendQueue},
		now: now, log: log, ctx: ctx, cancel: cancel,
		conns: map[*eventConn]struct{}{},
	}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		HandshakeTimeout: eventsWriteTimeout,
		// The origin is checked before the upgrade, with a JSON answer.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// raise adds t to the pending topics of every ready connection.
func (h *eventHub) raise(t topicSet) {
	if t == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.raise(t)
	}
}

// count is the number of open connections, for /metrics.
func (h *eventHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// close ends every connection with an error shutting_down and a going-away
// close, refuses new ones, and waits, bounded by the write timeout, for
// them to end.
func (h *eventHub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	conns := make([]*eventConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.fail(websocket.CloseGoingAway, "shutting_down", "the server is shutting down")
	}
	done := make(chan struct{})
	go func() { h.serving.Wait(); close(done) }()
	t := time.NewTimer(h.timing.write)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	h.cancel()
}

// Messages of the events WebSocket.
type (
	tokenMessage struct {
		Token *string `json:"token"`
	}
	readyMessage struct {
		Type  string      `json:"type"` // "ready"
		User  string      `json:"user"`
		Roles []core.Role `json:"roles"`
	}
	changedMessage struct {
		Type   string   `json:"type"` // "changed"
		Topics []string `json:"topics"`
	}
	eventError struct {
		Type  string `json:"type"` // "error"
		Code  string `json:"code"`
		Error string `json:"error"`
	}
)

// eventConn is one events connection. The HTTP handler's goroutine reads,
// one writer goroutine writes what enqueue queues and pings, and coalesced
// "changed" messages are queued by a timer.
type eventConn struct {
	hub *eventHub
	ws  *websocket.Conn

	out        chan []byte
	done       chan struct{} // closed when the connection is to end
	writerDone chan struct{}
	closeOnce  sync.Once
	closeCode  int // the close frame the writer sends; 0 for none
	closeText  string

	mu       sync.Mutex
	ready    bool
	expires  int64        // Unix seconds; 0 for never
	recheck  func() error // checks the token again; set when ready
	pending  topicSet
	flushing *time.Timer // set while a flush is scheduled
	lastSent time.Time
}

// sameOrigin lets in a request without an Origin (not a browser) or one
// from a page served by this host; a page elsewhere may not use the
// browser's connection to the appliance.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Values("Origin")
	if len(origin) == 0 {
		return true
	}
	u, err := url.Parse(origin[0])
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// eventsSocket serves GET /api/v1/events.
func (s *Server) eventsSocket(w http.ResponseWriter, r *http.Request) error {
	if !sameOrigin(r) {
		return &apiError{status: http.StatusForbidden, code: "forbidden_origin", msg: "the events WebSocket is open only to pages of this server; Origin " + r.Header.Get("Origin") + " is not " + r.Host}
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return badRequest("not_websocket", "GET /api/v1/events is a WebSocket: send Connection: Upgrade and Upgrade: websocket")
	}
	h := s.hub
	h.mu.Lock()
	closed, full := h.closed, h.open >= maxEventConns
	if !closed && !full {
		h.open++
		h.serving.Add(1)
	}
	h.mu.Unlock()
	switch {
	case closed:
		return &apiError{status: http.StatusServiceUnavailable, code: "shutting_down", msg: "the server is shutting down"}
	case full:
		return &apiError{status: http.StatusServiceUnavailable, code: "too_many_connections", msg: fmt.Sprintf("%d events connections are open, the most this server takes", maxEventConns)}
	}
	defer func() {
		h.mu.Lock()
		h.open--
		h.mu.Unlock()
		h.serving.Done()
	}()
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	c := &eventConn{hub: h, ws: ws, out: make(chan []byte, h.timing.queue), done: make(chan struct{}), writerDone: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close()
		return nil
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
	go c.writeLoop()
	s.readEvents(c, r.RemoteAddr)
	c.finish(0, "")
	<-c.writerDone
	return nil
}

// readEvents authenticates the connection by its first message, then
// reads until the client goes.
func (s *Server) readEvents(c *eventConn, remote string) {
	h := c.hub
	c.ws.SetReadLimit(maxEventMessage)
	c.ws.SetReadDeadline(time.Now().Add(h.timing.authTimeout))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.fail(websocket.ClosePolicyViolation, "auth_timeout", fmt.Sprintf(`no {"token":"…"} within %s`, h.timing.authTimeout))
		}
		return
	}
	var msg tokenMessage
	if typ != websocket.TextMessage || strictjson.Unmarshal(data, &msg) != nil {
		c.fail(websocket.ClosePolicyViolation, "bad_message", `the first message must be {"token":"…"}`)
		return
	}
	token, present := "", msg.Token != nil && *msg.Token != ""
	if present {
		token = *msg.Token
	}
	check := func() (core.User, int64, error) {
		ctx, cancel := context.WithTimeout(h.ctx, h.timing.write)
		defer cancel()
		return s.checkToken(ctx, token, present, remote)
	}
	user, expires, err := check()
	if err != nil {
		ae := errorFor(err)
		c.fail(websocket.ClosePolicyViolation, ae.code, ae.msg)
		return
	}
	c.authenticated(user, expires, func() error { _, _, err := check(); return err })

	pongWait := 2 * h.timing.ping
	c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		// The client has nothing more to say; what it sends is read and
		// dropped, so that pongs and its close are seen.
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(pongWait))
	}
}

// authenticated queues the ready message; from then on the connection
// receives changes.
func (c *eventConn) authenticated(user core.User, expires int64, recheck func() error) {
	roles := user.Roles
	if roles == nil {
		roles = []core.Role{}
	}
	msg, _ := json.Marshal(readyMessage{Type: "ready", User: user.Name, Roles: roles})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expires, c.recheck = expires, recheck
	c.enqueue(msg)
	c.ready = true
}

// raise adds t to the pending topics and schedules a flush: at once when
// the last "changed" went out a coalescing interval ago, else when it has.
func (c *eventConn) raise(t topicSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return
	}
	c.pending |= t
	if c.flushing != nil {
		return
	}
	wait := max(c.hub.timing.coalesce-time.Since(c.lastSent), 0)
	c.flushing = time.AfterFunc(wait, c.flush)
}

// flush queues one "changed" message with the pending topics. A change of
// users or properties may have ended the token (or anonymous access): it
// is checked again first.
func (c *eventConn) flush() {
	c.mu.Lock()
	t := c.pending
	c.pending, c.flushing, c.lastSent = 0, nil, time.Now()
	recheck := c.recheck
	c.mu.Unlock()
	if t == 0 || c.ended() {
		return
	}
	if t&(topicUsers|topicProperties) != 0 {
		var ae *apiError
		if err := recheck(); errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
			c.fail(websocket.ClosePolicyViolation, "unauthorized", "the token is no longer valid; log in again")
			return
		}
	}
	msg, _ := json.Marshal(changedMessage{Type: "changed", Topics: t.names()})
	c.enqueue(msg)
}

// enqueue queues a message for the writer without blocking; a client that
// lets its queue fill is disconnected.
func (c *eventConn) enqueue(msg []byte) {
	if c.ended() {
		return
	}
	select {
	case c.out <- msg:
	default:
		c.hub.log.Debug("events connection closed: send queue full", "remote", c.ws.RemoteAddr().String())
		c.finish(0, "")
		c.ws.NetConn().Close() // a writer stuck in a write returns
	}
}

// fail sends an error message, then a close frame with code, and ends the
// connection.
func (c *eventConn) fail(closeCode int, code, text string) {
	msg, _ := json.Marshal(eventError{Type: "error", Code: code, Error: text})
	c.enqueue(msg)
	c.finish(closeCode, code)
}

// finish ends the connection: the writer writes what is queued, then the
// close frame (none for code 0), and closes the socket.
func (c *eventConn) finish(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
	})
}

func (c *eventConn) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// expired reports whether the connection's token has expired by the
// server's clock.
func (c *eventConn) expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expires != 0 && c.hub.now().Unix() >= c.expires
}

// writeLoop writes queued messages and pings, and ends the connection when
// its token expires.
func (c *eventConn) writeLoop() {
	defer close(c.writerDone)
	defer c.ws.Close()
	h := c.hub
	ping := time.NewTicker(h.timing.ping)
	defer ping.Stop()
	check := time.NewTicker(h.timing.expiryCheck)
	defer check.Stop()
	write := func(msg []byte) bool {
		c.ws.SetWriteDeadline(time.Now().Add(h.timing.write))
		return c.ws.WriteMessage(websocket.TextMessage, msg) == nil
	}
	for {
		select {
		case msg := <-c.out:
			if !write(msg) {
				c.finish(0, "")
				return
			}
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.timing.write)) != nil {
				c.finish(0, "")
				return
			}
		case <-check.C:
			if c.expired() {
				c.fail(websocket.ClosePolicyViolation, "token_expired", "the token has expired; log in again")
			}
		case <-c.done:
			// What was queued before the end goes out first: an error
			// message precedes its close frame. Only this goroutine
			// receives, so a queued message is there to take.
			for len(c.out) > 0 {
				if !write(<-c.out) {
					return
				}
			}
			if c.closeCode != 0 {
				c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(h.timing.write))
			}
			return
		}
	}
}

// writeMetrics writes the events gauge.
func (h *eventHub) writeMetrics(w io.Writer) {
	fmt.Fprintln(w, "# HELP tally_events_connections Open events WebSocket connections of the admin UI on this node.")
	fmt.Fprintln(w, "# TYPE tally_events_connections gauge")
	fmt.Fprintf(w, "tally_events_connections %d\n", h.count())
}
