package raft

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// The first byte a dialer sends on a peer connection, after the TLS
// handshake, says which protocol the connection carries.
const (
	protoRaft    byte = 'R'
	protoForward byte = 'F'
)

// handshakeTimeout bounds the TLS handshake and the protocol byte of an
// incoming connection, so a peer that connects and says nothing cannot hold
// a goroutine.
const handshakeTimeout = 10 * time.Second

// errMuxClosed is returned by Accept once the mux is closed.
var errMuxClosed = errors.New("peer listener closed")

// mux serves the peer port: it terminates mutual TLS on every connection,
// reads the protocol byte and hands raft connections to the raft stream
// layer and forwarding connections to onForward.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	onForward func(net.Conn)
	dialer    func(address string, timeout time.Duration) (net.Conn, error)

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newMux(ln net.Listener, advertise string, server, client *tls.Config) (*mux, error) {
	addr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("%w: advertise address %q: %w", ErrInvalidConfig, advertise, err)
	}
	if addr.IP == nil || addr.IP.IsUnspecified() {
		return nil, fmt.Errorf("%w: advertise address %q must name an address peers can reach", ErrInvalidConfig, advertise)
	}
	return &mux{ln: ln, advertise: addr, server: server, client: client,
		raftConns: make(chan net.Conn), closed: make(chan struct{})}, nil
}

// serve accepts connections until the listener is closed.
func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route completes the handshake of one incoming connection and passes it
// on; a connection without a valid client certificate is closed.
func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	tc := tls.Server(c, m.server)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	var proto [1]byte
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return
	}
	if _, err := tc.Read(proto[:]); err != nil {
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	switch proto[0] {
	case protoRaft:
		select {
		case m.raftConns <- tc:
		case <-m.closed:
			tc.Close()
		}
	case protoForward:
		if m.onForward == nil {
			tc.Close()
			return
		}
		m.onForward(tc)
	default:
		tc.Close()
	}
}

// dial opens a connection to a peer for proto.
func (m *mux) dial(address string, proto byte, timeout time.Duration) (net.Conn, error) {
	dial := m.dialer
	if dial == nil {
		dial = func(address string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", address, timeout)
		}
	}
	c, err := dial(address, timeout)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, m.client)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("TLS with peer %s: %w", address, err)
	}
	if _, err := tc.Write([]byte{proto}); err != nil {
		tc.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// close stops the listener; connections already handed out are their
// owners' to close.
func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// wait waits for the accept loop and the handshakes in progress to end.
func (m *mux) wait() { m.wg.Wait() }

// raftLayer is the hraft.StreamLayer of the mux.
type raftLayer struct{ m *mux }

var _ hraft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.closed:
		return nil, errMuxClosed
	}
}

func (l raftLayer) Close() error { return l.m.close() }

func (l raftLayer) Addr() net.Addr { return l.m.advertise }

func (l raftLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(string(address), protoRaft, timeout)
}
