package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/transport/discovery"
	"github.com/tallyhq/tally/transport/mdns"
)

// presence is the node's LAN presence: the discovery responder on UDP
// (DISCOVER answered with a signed OFFER, SCAN and PING answers collected)
// and the mDNS responder announcing _tally._tcp and, on a cluster member,
// _tally-ha._tcp.
type presence struct {
	conn      net.PacketConn
	wake      net.PacketConn // sends Wake-on-LAN magic packets
	responder *discovery.Responder
	mdns      *mdns.Responder
	cancel    context.CancelFunc
	done      chan struct{}
}

// startPresence binds the discovery port and starts answering. The mDNS
// responder is best effort: a machine without a multicast interface still
// serves devices that know the address or broadcast, so its failure is
// logged, not fatal.
func startPresence(cfg config, main *licensingid.ID, httpsPort int, peers []mdns.Service, log *slog.Logger) (*presence, error) {
	addr := net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.DiscoveryPort))
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for discovery on %s: %w", addr, err)
	}
	endpoints := func() []discovery.Endpoint {
		var out []discovery.Endpoint
		for _, ip := range advertisedAddrs(cfg.Bind) {
			out = append(out, discovery.Endpoint{NodeID: cfg.NodeID,
				URL: "wss://" + net.JoinHostPort(ip.String(), strconv.Itoa(httpsPort)) + "/ws/device"})
		}
		return out
	}
	responder, err := discovery.NewResponder(discovery.Config{
		Conn:        conn,
		Signer:      main.Key,
		Certificate: main.Certificate,
		Offer: func() discovery.OfferInfo {
			return discovery.OfferInfo{Endpoints: endpoints(), Leader: cfg.NodeID, NodeID: cfg.NodeID}
		},
		Logger: log.With("part", "discovery"),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	wake, err := net.ListenPacket("udp4", net.JoinHostPort(cfg.Bind, "0"))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open the Wake-on-LAN socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &presence{conn: conn, wake: wake, responder: responder, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := responder.Serve(ctx); err != nil {
			log.Warn("discovery stopped", "err", err)
		}
	}()

	ip := net.ParseIP(cfg.Bind)
	if ip != nil && ip.IsLoopback() {
		return p, nil // a loopback node has no LAN to announce itself on
	}
	m, err := mdns.NewResponder(mdns.Config{
		Instance: "Tally on " + cfg.NodeID,
		Host:     mdnsHost(cfg.NodeID),
		Services: append([]mdns.Service{{Type: "_tally._tcp", Port: uint16(httpsPort), TXT: map[string]string{
			"fp": main.Fingerprint(), "api": "/api/v1", "ws": "/ws/device", "v": "1", "node": cfg.NodeID,
		}}}, peers...),
		Logger: log.With("part", "mdns"),
	})
	if err == nil {
		startCtx, cancelStart := context.WithTimeout(ctx, mdnsStartTimeout)
		err = m.Start(startCtx)
		cancelStart()
	}
	if err != nil {
		log.Warn("mDNS announcements are off", "err", err)
		return p, nil
	}
	p.mdns = m
	return p, nil
}

// mdnsStartTimeout bounds probing and the first announcement.
const mdnsStartTimeout = 10 * time.Second

// mdnsHost is a host name for the SRV records that does not collide with
// the machine's own name, which another mDNS daemon may announce.
func mdnsHost(nodeID string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(nodeID) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return "tally-" + strings.Trim(b.String(), "-") + ".local."
}

// advertisedAddrs are the addresses devices can reach this node at: the
// bound address, or every non-loopback IPv4 address when bound to all.
func advertisedAddrs(bind string) []netip.Addr {
	if a, err := netip.ParseAddr(bind); err == nil && !a.IsUnspecified() {
		return []netip.Addr{a}
	}
	var out []netip.Addr
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
					out = append(out, ip)
				}
			}
		}
	}
	return out
}

// close stops answering: the mDNS responder says goodbye, the discovery
// socket closes.
func (p *presence) close() {
	if p.mdns != nil {
		p.mdns.Close()
	}
	p.cancel()
	p.conn.Close()
	p.wake.Close()
	<-p.done
}
