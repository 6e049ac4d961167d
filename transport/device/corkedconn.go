package device

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkedConnLimit bounds what a corked connection holds before it writes
// anyway.
const corkedConnLimit = 32 << 10

// corkedConn is a connection whose writes can be held back and then sent
// together: the writer corks it while it writes the messages waiting in
// the send queue, and uncorks it when the queue is empty, so that replies
// that wait together cost one TLS record and one system call instead of
// one each. Writes while it is not corked (the handshake; control frames
// answered by the reading goroutine) go out at once. The buffer comes
// from a pool and goes back when uncorked, so an idle connection holds
// none.
type corkedConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   *[]byte
}

var corkedBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkedConnLimit); return &b }}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.held == nil {
		c.held = corkedBuffers.Get().(*[]byte)
	}
	if len(*c.held)+len(p) > corkedConnLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > corkedConnLimit {
			return c.Conn.Write(p)
		}
	}
	*c.held = append(*c.held, p...)
	return len(p), nil
}

// cork holds back writes until uncork.
func (c *corkedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was held back and lets later writes through.
func (c *corkedConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.flushLocked()
	if c.held != nil {
		corkedBuffers.Put(c.held)
		c.held = nil
	}
	return err
}

func (c *corkedConn) flushLocked() error {
	if c.held == nil || len(*c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.held)
	*c.held = (*c.held)[:0]
	return err
}

// corkingWriter hands the WebSocket upgrader the hijacked connection as a
// corkedConn.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkedConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkedConn{Conn: nc}
	return w.conn, rw, nil
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
