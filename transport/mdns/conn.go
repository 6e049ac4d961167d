package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ListenFunc opens a UDP socket; network is "udp4" or "udp6" and address
// is the wildcard address with port 5353. The socket must allow other
// sockets on the same port (SO_REUSEADDR, and SO_REUSEPORT where the
// system has it) so the responder, Browse and another mDNS daemon can run
// side by side.
type ListenFunc func(ctx context.Context, network, address string) (net.PacketConn, error)

// listenShared is the default ListenFunc.
func listenShared(ctx context.Context, network, address string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = reuseAddr(fd) })
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(ctx, network, address)
}

// packet is one datagram read from a socket.
type packet struct {
	data    []byte
	src     netip.AddrPort
	ifIndex int
}

// sockets are the joined IPv4 and IPv6 multicast sockets; either may be
// nil when the host lacks that family.
type sockets struct {
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
	ifaces []net.Interface
	log    *slog.Logger
}

// openSockets binds port 5353 for each family and joins the mDNS group on
// every interface that accepts it. It fails only when no interface joined
// either group.
func openSockets(ctx context.Context, listen ListenFunc, ifaces []net.Interface, log *slog.Logger) (*sockets, error) {
	s := &sockets{log: log}
	var errs []error
	joined := map[int]bool{}
	if c, err := listen(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", Port)); err != nil {
		errs = append(errs, fmt.Errorf("listen udp4: %w", err))
	} else {
		p := ipv4.NewPacketConn(c)
		n := 0
		for i := range ifaces {
			if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: multicastV4.Addr().AsSlice()}); err != nil {
				log.Debug("mdns: cannot join 224.0.0.251", "interface", ifaces[i].Name, "err", err)
				continue
			}
			joined[ifaces[i].Index] = true
			n++
		}
		if n == 0 {
			c.Close()
			errs = append(errs, errors.New("no interface joined 224.0.0.251"))
		} else {
			_ = p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
			_ = p.SetMulticastTTL(255)
			_ = p.SetTTL(255)
			_ = p.SetMulticastLoopback(true)
			s.v4 = p
		}
	}
	if c, err := listen(ctx, "udp6", fmt.Sprintf("[::]:%d", Port)); err != nil {
		log.Debug("mdns: no IPv6 socket", "err", err)
	} else {
		p := ipv6.NewPacketConn(c)
		n := 0
		for i := range ifaces {
			if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: multicastV6.Addr().AsSlice()}); err != nil {
				log.Debug("mdns: cannot join ff02::fb", "interface", ifaces[i].Name, "err", err)
				continue
			}
			joined[ifaces[i].Index] = true
			n++
		}
		if n == 0 {
			c.Close()
		} else {
			_ = p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
			_ = p.SetMulticastHopLimit(255)
			_ = p.SetHopLimit(255)
			_ = p.SetMulticastLoopback(true)
			s.v6 = p
		}
	}
	if s.v4 == nil && s.v6 == nil {
		return nil, fmt.Errorf("%w: %w", ErrNoInterfaces, errors.Join(errs...))
	}
	for _, ifi := range ifaces {
		if joined[ifi.Index] {
			s.ifaces = append(s.ifaces, ifi)
		}
	}
	return s, nil
}

// serve reads packets from both sockets and hands them to handle until
// the sockets are closed. It returns when both readers have stopped.
func (s *sockets) serve(handle func(packet)) {
	var readers []func([]byte) (int, int, net.Addr, error)
	if s.v4 != nil {
		readers = append(readers, func(b []byte) (int, int, net.Addr, error) {
			k, cm, src, err := s.v4.ReadFrom(b)
			if cm != nil {
				return k, cm.IfIndex, src, err
			}
			return k, 0, src, err
		})
	}
	if s.v6 != nil {
		readers = append(readers, func(b []byte) (int, int, net.Addr, error) {
			k, cm, src, err := s.v6.ReadFrom(b)
			if cm != nil {
				return k, cm.IfIndex, src, err
			}
			return k, 0, src, err
		})
	}
	var wg sync.WaitGroup
	for _, read := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 9000)
			for {
				k, ifIndex, src, err := read(buf)
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					// A failed read (an ICMP error reported on the
					// socket, say) is not worth spinning on.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				handle(packet{data: append([]byte(nil), buf[:k]...), src: addrPort(src), ifIndex: ifIndex})
			}
		}()
	}
	wg.Wait()
}

// send writes b to dst. A multicast dst goes out on interface ifIndex, or
// on every joined interface when ifIndex is 0; the family of dst picks the
// socket.
func (s *sockets) send(b []byte, dst netip.AddrPort, ifIndex int) error {
	var errs []error
	targets := []int{ifIndex}
	if dst.Addr().IsMulticast() && ifIndex == 0 {
		targets = targets[:0]
		for _, ifi := range s.ifaces {
			targets = append(targets, ifi.Index)
		}
	}
	for _, idx := range targets {
		var err error
		to := net.UDPAddrFromAddrPort(dst)
		switch {
		case dst.Addr().Unmap().Is4() && s.v4 != nil:
			var cm *ipv4.ControlMessage
			if dst.Addr().IsMulticast() {
				cm = &ipv4.ControlMessage{IfIndex: idx}
			}
			to.IP = dst.Addr().Unmap().AsSlice()
			_, err = s.v4.WriteTo(b, cm, to)
		case dst.Addr().Is6() && s.v6 != nil:
			var cm *ipv6.ControlMessage
			if dst.Addr().IsMulticast() || dst.Addr().IsLinkLocalUnicast() {
				cm = &ipv6.ControlMessage{IfIndex: idx}
			}
			_, err = s.v6.WriteTo(b, cm, to)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close leaves the groups and closes the sockets.
func (s *sockets) close() error {
	var errs []error
	if s.v4 != nil {
		for i := range s.ifaces {
			_ = s.v4.LeaveGroup(&s.ifaces[i], &net.UDPAddr{IP: multicastV4.Addr().AsSlice()})
		}
		errs = append(errs, s.v4.Close())
	}
	if s.v6 != nil {
		for i := range s.ifaces {
			_ = s.v6.LeaveGroup(&s.ifaces[i], &net.UDPAddr{IP: multicastV6.Addr().AsSlice()})
		}
		errs = append(errs, s.v6.Close())
	}
	return errors.Join(errs...)
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// multicastInterfaces returns the interfaces that are up and can
// multicast, or ifaces when it is not empty.
func multicastInterfaces(ifaces []net.Interface) ([]net.Interface, error) {
	if len(ifaces) > 0 {
		return ifaces, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoInterfaces, err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
			out = append(out, ifi)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoInterfaces
	}
	return out, nil
}

// interfaceAddrs returns the unicast addresses of ifaces, the default for
// Config.Addrs.
func interfaceAddrs(ifaces []net.Interface) []netip.Addr {
	var out []netip.Addr
	for _, ifi := range ifaces {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out = append(out, p.Addr().Unmap())
			}
		}
	}
	return out
}
