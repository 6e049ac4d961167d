package device

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// Handler serves the device protocol on a WebSocket. Mount it at
// deviceproto.Path.
type Handler struct {
	cfg      Config
	upgrader websocket.Upgrader
	signer   *batchSigner
	policy   *policyCache
	// applyContexts bound the store operations of requests.
	applyContexts *applyContexts
	metrics       *metrics
	sources       *sourceLimiter  // failed onboard and authenticate attempts per address
	ctx           context.Context // cancelled by Close
	cancel        context.CancelFunc

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}
	byDevice map[hostid.HostID][]*conn
	open     int // connections counted against MaxConnections, upgrading ones included

	// onboards counts the Onboard commands Notify has seen; a connection
	// that read a device's credential compares it before and after
	// registering, so an onboarding it could not see is never missed.
	onboards atomic.Uint64

	pushMu   sync.Mutex
	pushJobs []pushJob
	pushWake chan struct{}

	workers sync.WaitGroup // signer and pusher
	serving sync.WaitGroup // connections
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a handler for cfg and starts its signer.
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		cfg:           cfg,
		policy:        &policyCache{store: cfg.Store, now: cfg.Now},
		metrics:       newMetrics(),
		sources:       newSourceLimiter(cfg.MaxSourceAuthFailures, cfg.SourceAuthInterval, cfg.Now),
		ctx:           ctx,
		cancel:        cancel,
		applyContexts: newApplyContexts(ctx, cfg.ApplyTimeout),
		conns:         map[*conn]struct{}{},
		byDevice:      map[hostid.HostID][]*conn{},
		pushWake:      make(chan struct{}, 1),
	}
	// Small buffers: an idle connection should cost little. Writes borrow
	// a buffer from the pool only while a message is being written.
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:   512,
		WriteBufferSize:  2048,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: cfg.WriteTimeout,
	}
	h.signer = newBatchSigner(cfg.Signer, cfg.Random, cfg.MaxSignBatch, cfg.SignLinger, ctx.Done())
	h.workers.Add(2)
	go func() { defer h.workers.Done(); h.signer.run() }()
	go func() { defer h.workers.Done(); h.runPushes() }()
	return h, nil
}

// ServeHTTP upgrades the request to a WebSocket and serves the connection
// on a goroutine of its own until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed || h.open >= h.cfg.MaxConnections {
		closed := h.closed
		h.mu.Unlock()
		h.metrics.rejected.Add(1)
		msg, code := "too many device connections", "too_many_connections"
		if closed {
			msg, code = "the server is shutting down", deviceproto.CodeShuttingDown
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": code})
		return
	}
	h.open++
	h.serving.Add(1)
	h.mu.Unlock()
	done := func() {
		h.mu.Lock()
		h.open--
		h.mu.Unlock()
		h.serving.Done()
	}

	cw := &corkingWriter{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		done()
		return // the upgrader has answered
	}
	c := newConn(h, ws, cw.conn)
	c.addr = r.RemoteAddr
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close()
		done()
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.metrics.accepted.Add(1)
	h.metrics.connections.Add(1)
	// The connection is served on goroutines of its own and the HTTP
	// handler returns: the server's goroutine, its stack grown by the TLS
	// handshake, and its request buffers, which the hijacked connection
	// no longer needs, are freed. An idle device costs that much less.
	c.serve(func() {
		h.metrics.connections.Add(-1)
		done()
	})
}

// Close closes every connection with a going-away close frame, stops the
// signer and waits, bounded by WriteTimeout, for the connections to end.
// Devices are not disconnected in the store: they will reconnect.
func (h *Handler) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.finish(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { h.serving.Wait(); close(done) }()
	t := time.NewTimer(h.cfg.WriteTimeout)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	h.cancel()
	h.workers.Wait()
}

func (h *Handler) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// register records that c speaks for device.
func (h *Handler) register(c *conn, device hostid.HostID) {
	h.mu.Lock()
	first := len(h.byDevice[device]) == 0
	h.byDevice[device] = append(h.byDevice[device], c)
	h.mu.Unlock()
	if first {
		h.onlineChanged()
	}
}

// onlineChanged calls Config.OnlineChanged; h.mu must not be held.
func (h *Handler) onlineChanged() {
	if h.cfg.OnlineChanged != nil {
		h.cfg.OnlineChanged()
	}
}

// ConnectedDevices counts the devices with a connection to this node that
// Connected reports.
func (h *Handler) ConnectedDevices() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byDevice)
}

// Connected reports whether the device has a connection to this node that
// has said hello (and authenticated, when the device is onboarded).
func (h *Handler) Connected(device hostid.HostID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byDevice[device]) > 0
}

// unregister forgets c; it reports whether another connection still speaks
// for device.
func (h *Handler) unregister(c *conn, device hostid.HostID, registered bool) (others bool) {
	h.mu.Lock()
	delete(h.conns, c)
	if !registered {
		others = len(h.byDevice[device]) > 0
		h.mu.Unlock()
		return others
	}
	list := h.byDevice[device]
	was := len(list)
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(h.byDevice, device)
	} else {
		h.byDevice[device] = list
	}
	h.mu.Unlock()
	if was > 0 && len(list) == 0 {
		h.onlineChanged()
	}
	return len(list) > 0
}

// pushJob is a lease change to push to the connections of a device.
type pushJob struct {
	device hostid.HostID
	event  string
	leases []core.Lease
	conns  []*conn
}

// Notify tells the handler about an applied request. The node calls it for
// every request in log order; it does not block. Lease changes of
// connected devices are pushed to them, and a dropped device is told and
// must say hello again.
func (h *Handler) Notify(req core.Request, res core.Result) {
	switch cmd := req.Command.(type) {
	case *core.SetProperty, *core.LoadRights, *core.RemoveRights:
		h.policy.invalidate()
	case *core.Onboard:
		h.credentialChanged(res.Onboarded, cmd.PublicKey)
	}
	drop, isDrop := req.Command.(*core.DropDevice)
	if len(res.Changed) == 0 && !isDrop {
		return
	}
	var jobs []pushJob
	index := map[hostid.HostID]int{}
	h.mu.Lock()
	for _, l := range res.Changed {
		conns := h.byDevice[l.Device]
		if len(conns) == 0 {
			continue
		}
		i, ok := index[l.Device]
		if !ok {
			i = len(jobs)
			index[l.Device] = i
			jobs = append(jobs, pushJob{device: l.Device, event: deviceproto.EventLeaseChanged, conns: append([]*conn(nil), conns...)})
		}
		jobs[i].leases = append(jobs[i].leases, l)
	}
	wentOffline := false
	if isDrop {
		conns := h.byDevice[drop.Device]
		delete(h.byDevice, drop.Device)
		wentOffline = len(conns) > 0
		if len(conns) > 0 {
			i, ok := index[drop.Device]
			if !ok {
				i = len(jobs)
				jobs = append(jobs, pushJob{device: drop.Device, conns: conns})
			}
			jobs[i].event = deviceproto.EventDropped
			for _, c := range conns {
				c.forgetDevice()
			}
		}
	}
	h.mu.Unlock()
	if wentOffline {
		h.onlineChanged()
	}
	if len(jobs) == 0 {
		return
	}
	h.pushMu.Lock()
	h.pushJobs = append(h.pushJobs, jobs...)
	h.pushMu.Unlock()
	select {
	case h.pushWake <- struct{}{}:
	default:
	}
}

// runPushes signs and queues pushes in the order Notify saw them.
func (h *Handler) runPushes() {
	for {
		select {
		case <-h.pushWake:
		case <-h.ctx.Done():
			return
		}
		h.pushMu.Lock()
		jobs := h.pushJobs
		h.pushJobs = nil
		h.pushMu.Unlock()
		if len(jobs) == 0 {
			continue
		}
		pol, err := h.policy.get(h.ctx)
		if err != nil {
			h.cfg.Logger.Warn("lease pushes dropped: cannot read the policy", "err", err, "pushes", len(jobs))
			continue
		}
		now := h.cfg.Now().UTC()
		payloads := make([][]byte, len(jobs))
		for i, j := range jobs {
			p := deviceproto.Payload{
				Device: wireHostID(j.device), Event: j.event, Issued: now,
				Expires: now.Add(pol.responseLifetime), Grants: make([]deviceproto.Grant, 0, len(j.leases)),
			}
			for _, l := range j.leases {
				p.Grants = append(p.Grants, deviceproto.Grant{
					Feature: l.Feature, Version: l.Version.String(), Count: l.Count,
					Overdraft: l.Overdraft, Expiry: l.Expiry,
				})
			}
			payloads[i], _ = marshalPayload(&p)
		}
		signed, err := h.signer.signAll(payloads)
		if err != nil {
			h.cfg.Logger.Error("lease pushes dropped: signing failed", "err", err, "pushes", len(jobs))
			continue
		}
		for i, j := range jobs {
			msg := encodeSigned(deviceproto.TypeLeaseChanged, 0, &signed[i])
			for _, c := range j.conns {
				h.metrics.pushes.Add(1)
				c.enqueue(msg)
			}
		}
	}
}

func wireHostID(h hostid.HostID) deviceproto.HostID {
	return deviceproto.HostID{Value: h.Value, Type: h.Type.String()}
}

// encode writes an envelope.
func encode(typ string, id uint64, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(deviceproto.Envelope{Type: typ, ID: id, Body: raw})
}
