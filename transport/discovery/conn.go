package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// readBufferSize is larger than MaxPacketSize so that an oversized
// datagram is seen as such rather than cut to a valid length.
const readBufferSize = 2048

// maxReadErrors bounds consecutive failed reads before a serve loop gives
// up, so that a broken socket does not spin forever.
const maxReadErrors = 100

// minReplyPort is the lowest port a reply is sent to: services below it
// (DNS, NTP, chargen, …) are what reflection attacks aim at.
const minReplyPort = 1024

// pastDeadline is any time in the past; setting it as a read deadline wakes
// a blocked read.
var pastDeadline = time.Unix(1, 0)

// readLoop reads datagrams from conn and hands each to handle, until ctx
// ends (it returns nil) or the socket fails. The buffer handed to handle is
// reused; handle must not keep it.
func readLoop(ctx context.Context, conn net.PacketConn, handle func(b []byte, from netip.AddrPort)) error {
	stop := make(chan struct{})
	woken := make(chan struct{})
	go func() {
		defer close(woken)
		select {
		case <-ctx.Done():
			_ = conn.SetReadDeadline(pastDeadline)
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-woken
		if ctx.Err() != nil {
			_ = conn.SetReadDeadline(time.Time{})
		}
	}()
	buf := make([]byte, readBufferSize)
	failures := 0
	for {
		n, addr, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			if failures++; failures >= maxReadErrors || errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			continue
		}
		failures = 0
		from, ok := addrPort(addr)
		if !ok {
			continue
		}
		handle(buf[:n], from)
	}
}

// addrPort turns a UDP address into a netip.AddrPort with IPv4 unmapped.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}

// localPort returns the UDP port conn is bound to, or 0.
func localPort(conn net.PacketConn) uint16 {
	if ap, ok := addrPort(conn.LocalAddr()); ok {
		return ap.Port()
	}
	return 0
}

// send writes b to dst and counts it.
func send(conn net.PacketConn, c *counters, t Type, b []byte, dst netip.AddrPort) error {
	if _, err := conn.WriteTo(b, net.UDPAddrFromAddrPort(dst)); err != nil {
		c.sendErrors.Add(1)
		return err
	}
	c.sent[t].Add(1)
	return nil
}

// replyAllowed is the anti-amplification rule: a reply goes to an
// unprivileged port and is at most AmplificationFactor times the request.
func replyAllowed(request, reply int, dst netip.AddrPort) bool {
	return dst.Port() >= minReplyPort && reply <= AmplificationFactor*request
}
