package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// conn is one device connection. A reading goroutine reads, up to
// MaxInFlight request goroutines run what it read, and a writer goroutine,
// started when there is something to write and gone when all is written,
// writes what enqueue queues. An idle connection has a reading goroutine
// only, with a small stack (read).
type conn struct {
	h  *Handler
	ws *websocket.Conn
	// out is the connection under ws, corked while the writer writes
	// the replies that wait together.
	out *corkedConn

	done      chan struct{} // closed when the connection is to end
	closeOnce sync.Once
	inflight  chan struct{}
	requests  sync.WaitGroup

	// wmu guards the write side: what waits to be written, and whether a
	// writer runs.
	wmu sync.Mutex
	// queue holds the messages waiting for the writer, at most SendQueue.
	queue []outMsg
	// writing is true while a writer goroutine runs.
	writing bool
	// pingDue: the ping timer fired; the writer sends a ping.
	pingDue bool
	// ending: finish was called; the writer writes what is queued, sends
	// the close frame (closeCode, none when 0) and closes the socket.
	ending    bool
	closeCode int
	closeText string
	// closed: the socket is closed; nothing more is queued.
	closed bool
	// ping asks for a ping a third of ReadTimeout after the last; set by
	// serve unless the connection closed before it.
	ping *time.Timer
	// ended runs once the connection has ended (serve).
	ended func()

	// addr is the device's network address, for the audit log.
	addr string
	// challenge is what onboard and authenticate sign on this connection;
	// made at the first hello.
	challenge []byte

	// Used by the reading goroutines only, one after another: the token
	// bucket and the count of refused onboard and authenticate attempts.
	tokens   float64
	last     time.Time
	failures int

	mu sync.Mutex
	// device and info are what the last accepted hello said; said is
	// false before it and after the device was dropped.
	device hostid.HostID
	info   core.DeviceInfo
	said   bool
	// registered: the hello was applied and the handler knows the
	// connection speaks for device (pushes, disconnect).
	registered bool
	// mustAuth: the device has a credential, so requests are served only
	// once authKey, the credential this connection proved it holds, is set.
	mustAuth bool
	authKey  []byte
	// session is the device connection number core gave the latest
	// hello (or onboard) applied here (core.Result.Conn); requests name
	// it, so that core refuses them once the device has connected again.
	// 0 below state level 2.
	session uint64
	// order holds, per feature name, the completion of the latest request
	// in flight that names it: requests of one connection run concurrently
	// but those naming the same feature apply in the order they arrived.
	order map[string]chan struct{}
}

func newConn(h *Handler, ws *websocket.Conn, out *corkedConn) *conn {
	return &conn{
		h:        h,
		ws:       ws,
		out:      out,
		done:     make(chan struct{}),
		inflight: make(chan struct{}, h.cfg.MaxInFlight),
		tokens:   max(h.cfg.MaxRate, 1),
		last:     h.cfg.Now(),
	}
}

// finish ends the connection: the writer flushes what is queued, sends a
// close frame with code (none when 0) and closes the socket.
func (c *conn) finish(code int, text string) {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wmu.Lock()
		c.ending, c.closeCode, c.closeText = true, code, text
		c.startWriterLocked()
		c.wmu.Unlock()
	})
}

// abort ends the connection at once, without a close frame: the peer is
// not reading.
func (c *conn) abort() {
	c.finish(0, "")
	c.ws.NetConn().Close()
}

// outMsg is a message queued for the writer. When buf is set it holds
// data and goes back to msgBuffers once written.
type outMsg struct {
	data []byte
	buf  *[]byte
}

// msgBuffers hold replies from their encoding until they are written.
var msgBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// enqueue queues a message for the writer; a full queue (SendQueue
// messages waiting) aborts the connection.
func (c *conn) enqueue(msg []byte) { c.enqueueMsg(outMsg{data: msg}) }

// enqueueBuffer queues the message in a buffer from msgBuffers, which
// the caller no longer uses.
func (c *conn) enqueueBuffer(buf *[]byte) { c.enqueueMsg(outMsg{data: *buf, buf: buf}) }

func (c *conn) enqueueMsg(msg outMsg) {
	c.wmu.Lock()
	if c.ending || c.closed {
		c.wmu.Unlock()
		return
	}
	if len(c.queue) >= c.h.cfg.SendQueue {
		c.wmu.Unlock()
		c.h.metrics.overflows.Add(1)
		c.h.cfg.Logger.Debug("device connection closed: send queue full", "device", c.currentDevice())
		c.abort()
		return
	}
	c.queue = append(c.queue, msg)
	c.startWriterLocked()
	c.wmu.Unlock()
}

// startWriterLocked starts a writer unless one runs or the socket is
// closed. A connection without a socket (tests of processing) keeps what
// is queued for takeQueued. c.wmu is held.
func (c *conn) startWriterLocked() {
	if c.writing || c.closed || c.ws == nil {
		return
	}
	c.writing = true
	go c.write()
}

// takeQueued removes and returns what waits to be written.
func (c *conn) takeQueued() []outMsg {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// pingNow is the ping timer's function: it has the writer send a ping.
func (c *conn) pingNow() {
	c.wmu.Lock()
	c.pingDue = true
	c.startWriterLocked()
	c.wmu.Unlock()
}

func (c *conn) reply(typ string, id uint64, body any) {
	msg, err := encode(typ, id, body)
	if err != nil {
		c.h.cfg.Logger.Error("encode a reply", "type", typ, "err", err)
		return
	}
	c.enqueue(msg)
}

func (c *conn) replyError(id uint64, err error) {
	pe := errorFor(err)
	if pe.code == deviceproto.CodeInternal {
		c.h.cfg.Logger.Error("device request failed", "device", c.currentDevice(), "err", err)
	}
	c.h.metrics.countError(pe.code)
	c.reply(deviceproto.TypeError, id, deviceproto.Error{Code: pe.code, Message: pe.msg})
}

func (c *conn) currentDevice() hostid.HostID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device
}

// forgetDevice is called when the device is dropped: it must say hello again.
func (c *conn) forgetDevice() {
	c.mu.Lock()
	c.registered, c.said = false, false
	c.mu.Unlock()
}

// helloDevice returns the device and whether the handler knows the
// connection speaks for it.
func (c *conn) helloDevice() (hostid.HostID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device, c.registered
}

// admitted returns the device whose requests the connection may make now:
// it has said hello and, if the device is onboarded, authenticated.
func (c *conn) admitted() (hostid.HostID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.said:
		return hostid.HostID{}, newError(deviceproto.CodeHelloRequired, "say hello first")
	case c.mustAuth && c.authKey == nil:
		return hostid.HostID{}, newError(deviceproto.CodeAuthRequired,
			"device "+c.device.String()+" is onboarded: authenticate with its key first")
	case !c.registered:
		return hostid.HostID{}, newError(deviceproto.CodeHelloRequired, "say hello first")
	}
	return c.device, nil
}

// serve starts serving the connection; ended runs once it has ended.
func (c *conn) serve(ended func()) {
	h := c.h
	c.ended = ended
	c.wmu.Lock()
	if !c.closed {
		c.ping = time.AfterFunc(h.cfg.ReadTimeout/3, c.pingNow)
	}
	c.wmu.Unlock()
	c.ws.SetReadLimit(h.cfg.MaxMessageBytes)
	c.ws.SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	})
	go c.read()
}

// read reads and processes the device's next message, then reads on on a
// new goroutine: the goroutine that waits on an idle connection has the
// small stack waiting needs, not the one processing the last message grew
// (a goroutine's stack shrinks only to twice what it uses). When the
// connection is over, read ends it.
func (c *conn) read() {
	if c.readMessage() {
		go c.read()
		return
	}
	c.end()
}

// end runs when the peer is gone or has closed, or the connection must end:
// it waits for the requests in flight, unregisters the connection and,
// when it was the device's last, applies the disconnect.
func (c *conn) end() {
	h := c.h
	c.finish(0, "") // nothing more to say
	c.requests.Wait()

	device, registered := c.helloDevice()
	others := h.unregister(c, device, registered)
	if registered && !others && !h.isClosed() {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.ApplyTimeout)
		_, err := h.cfg.Store.Apply(ctx, &core.Disconnect{Device: device, Conn: c.currentSession()})
		cancel()
		if err != nil && !errors.Is(err, core.ErrUnknownDevice) {
			h.cfg.Logger.Warn("apply disconnect", "device", device, "err", err)
		}
	}
	c.ended()
}

// readBuffers hold one message each while it is processed; processing
// keeps no reference to a message's bytes. A connection takes one only
// once a message has arrived.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readMessage reads one message and processes it. It reports whether the
// connection goes on.
func (c *conn) readMessage() bool {
	h := c.h
	_, r, err := c.ws.NextReader()
	buf := readBuffers.Get().(*bytes.Buffer)
	defer readBuffers.Put(buf)
	buf.Reset()
	if err == nil {
		_, err = buf.ReadFrom(r)
	}
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			// gorilla has sent close 1009.
			h.metrics.oversized.Add(1)
			c.finish(0, "")
		}
		return false
	}
	c.ws.SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	return !c.process(buf.Bytes())
}

// process handles one message from the device. Requests after hello run
// on their own goroutines, at most MaxInFlight at once. It reports whether
// the connection must end.
func (c *conn) process(data []byte) (end bool) {
	c.h.metrics.received.Add(1)
	fast, isFast := readCapabilityMessage(data)
	var env deviceproto.Envelope
	if isFast {
		env = fast.env
	} else if err := json.Unmarshal(data, &env); err != nil {
		c.replyError(0, newError(deviceproto.CodeMalformed, "message is not a JSON envelope: "+oneLine(err.Error())))
		return false
	}
	if !c.allow() {
		c.replyError(env.ID, newError(deviceproto.CodeRateLimited, "too many messages; slow down"))
		return false
	}
	switch env.Type {
	case deviceproto.TypeHello:
		return c.hello(env)
	case deviceproto.TypeOnboard:
		return c.onboard(env)
	case deviceproto.TypeAuthenticate:
		return c.authenticate(env)
	case deviceproto.TypeCapabilityRequest, deviceproto.TypeRenew, deviceproto.TypeReturn, deviceproto.TypeStatus:
		if _, err := c.admitted(); err != nil {
			c.replyError(env.ID, err)
			return false
		}
		req := request{id: env.ID, features: fast.features}
		if !isFast {
			var err error
			if req, err = decodeRequest(env); err != nil {
				c.replyError(env.ID, err)
				return false
			}
		}
		select {
		case c.inflight <- struct{}{}:
		case <-c.done:
			return true
		}
		waits, mine := c.sequence(req)
		c.requests.Add(1)
		go func() {
			defer func() { <-c.inflight; c.requests.Done() }()
			for _, w := range waits {
				<-w
			}
			c.handle(req)
			c.unsequence(req, mine)
		}()
	default:
		c.replyError(env.ID, newError(deviceproto.CodeUnknownType, "unknown message type "+quote(env.Type)))
	}
	return false
}

// sequence returns what req must wait for: the requests in flight naming
// one of its features, or, for status, every request in flight. It runs on
// the reading goroutine, so the order is the order of arrival.
func (c *conn) sequence(req request) (waits []chan struct{}, mine chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.features == nil {
		for _, ch := range c.order {
			waits = append(waits, ch)
		}
		return waits, nil
	}
	mine = make(chan struct{})
	if c.order == nil {
		c.order = map[string]chan struct{}{}
	}
	for _, f := range req.features {
		prev, ok := c.order[f.Name]
		if prev == mine {
			continue
		}
		if ok {
			waits = append(waits, prev)
		}
		c.order[f.Name] = mine
	}
	return waits, mine
}

// unsequence marks req done.
func (c *conn) unsequence(req request, mine chan struct{}) {
	if mine == nil {
		return
	}
	c.mu.Lock()
	for _, f := range req.features {
		if c.order[f.Name] == mine {
			delete(c.order, f.Name)
		}
	}
	c.mu.Unlock()
	close(mine)
}

// allow takes a token from the connection's bucket.
func (c *conn) allow() bool {
	rate := c.h.cfg.MaxRate
	if rate < 0 {
		return true
	}
	now := c.h.cfg.Now()
	burst := max(rate, 1)
	c.tokens = min(burst, c.tokens+now.Sub(c.last).Seconds()*rate)
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// write is the writer: it writes what is queued, the replies that wait
// together in one write to the connection, and sends a due ping, until
// nothing is left; then it ends. Once the connection is ending it also
// sends the close frame and closes the socket.
func (c *conn) write() {
	h := c.h
	var batch []outMsg
	rearm := false // a ping went out: the timer starts again
	for {
		c.wmu.Lock()
		if rearm && !c.closed && c.ping != nil {
			c.ping.Reset(h.cfg.ReadTimeout / 3)
		}
		batch, c.queue = c.queue, batch[:0]
		ping := c.pingDue
		c.pingDue = false
		if len(batch) == 0 && !ping {
			if c.ending {
				c.closed = true
				c.stopPingLocked()
			}
			c.writing = false
			closing, code, text := c.closed, c.closeCode, c.closeText
			if cap(c.queue) > 4 {
				c.queue = nil // an idle connection keeps no big queue
			}
			c.wmu.Unlock()
			if closing {
				if code != 0 {
					c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
						time.Now().Add(time.Second))
				}
				c.ws.Close()
			}
			return
		}
		c.wmu.Unlock()
		if !c.writeBatch(batch, ping) {
			c.wmu.Lock()
			c.closed, c.writing, c.queue = true, false, nil
			c.stopPingLocked()
			c.wmu.Unlock()
			c.finish(0, "") // the peer is not reading: no close frame
			c.ws.Close()
			return
		}
		clear(batch)
		rearm = ping
	}
}

// stopPingLocked stops the ping timer, if serve started it. c.wmu is held.
func (c *conn) stopPingLocked() {
	if c.ping != nil {
		c.ping.Stop()
	}
}

// writeBatch writes batch, corked when it holds more than one message,
// then a ping if ping is set. It reports whether all went out.
func (c *conn) writeBatch(batch []outMsg, ping bool) bool {
	h := c.h
	ok := true
	if len(batch) > 1 {
		c.out.cork()
	}
	for _, msg := range batch {
		if ok {
			c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg.data); err != nil {
				ok = false
			} else {
				h.metrics.sent.Add(1)
			}
		}
		if msg.buf != nil && cap(*msg.buf) <= 64<<10 {
			*msg.buf = (*msg.buf)[:0]
			msgBuffers.Put(msg.buf)
		}
	}
	if len(batch) > 1 {
		if err := c.out.uncork(); err != nil {
			ok = false
		}
	}
	if ok && ping {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
			ok = false
		}
	}
	return ok
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// setSession records the connection number an applied hello or onboard
// answered with.
func (c *conn) setSession(res core.Result) {
	c.mu.Lock()
	c.session = res.Conn
	c.mu.Unlock()
}

func (c *conn) currentSession() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}
