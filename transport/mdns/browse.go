package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// browseTick is how often Browse looks for instances it must resolve
	// further; browseRequery is the least time between two queries for the
	// same thing.
	browseTick    = 250 * time.Millisecond
	browseRequery = time.Second
)

// Instance is one service instance found by Browse.
type Instance struct {
	// Name is the instance name, unescaped ("Tally on node1").
	Name string
	// Host is the host name the SRV record points to ("node1.local.").
	Host string
	// Port is the port of the SRV record.
	Port uint16
	// Addrs are the host's addresses seen in A and AAAA records.
	Addrs []netip.Addr
	// TXT holds the key=value pairs of the TXT record; a key without '='
	// maps to "".
	TXT map[string]string
}

// Browser browses for services. The zero value uses every multicast
// interface and the host's network.
type Browser struct {
	// Interfaces to query on; empty means every interface that is up and
	// can multicast.
	Interfaces []net.Interface
	// Logger receives debug logs; the default discards them.
	Logger *slog.Logger
	// Listen opens the sockets; the default is the one the responder uses.
	Listen ListenFunc
	// After waits like time.After, which is the default.
	After func(time.Duration) <-chan time.Time
}

// Browse finds the instances of serviceType ("_tally._tcp") on the local
// link with the zero Browser.
func Browse(ctx context.Context, serviceType string, timeout time.Duration) ([]Instance, error) {
	return (&Browser{}).Browse(ctx, serviceType, timeout)
}

// Browse sends multicast (QM) queries for serviceType from port 5353 for
// timeout, asks for the SRV, TXT and address records that the answers
// lacked, and returns the instances whose SRV record it saw, sorted by
// name. Instances that said goodbye are left out. It returns early with
// what it found and ctx's error when ctx is done.
func (b *Browser) Browse(ctx context.Context, serviceType string, timeout time.Duration) ([]Instance, error) {
	if err := (Service{Type: serviceType, Port: 1}).validate(); err != nil {
		return nil, err
	}
	log, after, listen := b.Logger, b.After, b.Listen
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if after == nil {
		after = time.After
	}
	if listen == nil {
		listen = listenShared
	}
	ifaces, err := multicastInterfaces(b.Interfaces)
	if err != nil {
		return nil, err
	}
	socks, err := openSockets(ctx, listen, ifaces, log)
	if err != nil {
		return nil, err
	}
	c := newCollection(serviceTypeName(serviceType))
	served := make(chan struct{})
	go func() {
		defer close(served)
		socks.serve(func(p packet) {
			m := new(dns.Msg)
			if m.Unpack(p.data) == nil && m.Response {
				c.add(m)
			}
		})
	}()
	defer func() {
		_ = socks.close()
		<-served
	}()

	deadline := after(timeout)
	asked := map[string]int{} // question key -> tick it was last asked
	nextBrowse, browseGap := 0, int(browseRequery/browseTick)
	maxTicks := int(timeout/browseTick) + 1
	for tick := 0; tick <= maxTicks; tick++ {
		q := new(dns.Msg)
		if tick == nextBrowse {
			q.Question = append(q.Question, dns.Question{Name: c.serviceType, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
			q.Answer = c.knownPTRs()
			nextBrowse += browseGap
			browseGap *= 2
		}
		for _, question := range c.missing() {
			key := question.Name + "/" + dns.TypeToString[question.Qtype]
			if last, ok := asked[key]; ok && tick-last < int(browseRequery/browseTick) {
				continue
			}
			asked[key] = tick
			q.Question = append(q.Question, question)
		}
		if len(q.Question) > 0 {
			if pkt, err := q.Pack(); err == nil {
				for _, dst := range []netip.AddrPort{multicastV4, multicastV6} {
					if err := socks.send(pkt, dst, 0); err != nil {
						log.Debug("mdns: browse query", "to", dst, "err", err)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return c.instances(), ctx.Err()
		case <-deadline:
			return c.instances(), nil
		case <-after(browseTick):
		}
	}
	return c.instances(), nil
}

// collection gathers the records Browse receives.
type collection struct {
	serviceType string
	mu          sync.Mutex
	ptrs        map[string]*dns.PTR // instance name key -> PTR
	srvs        map[string]*dns.SRV
	txts        map[string]*dns.TXT
	addrs       map[string][]netip.Addr // host name key -> addresses
}

func newCollection(serviceType string) *collection {
	return &collection{
		serviceType: serviceType,
		ptrs:        map[string]*dns.PTR{},
		srvs:        map[string]*dns.SRV{},
		txts:        map[string]*dns.TXT{},
		addrs:       map[string][]netip.Addr{},
	}
}

// add files the records of response m.
func (c *collection) add(m *dns.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rr := range append(slices.Clip(m.Answer), m.Extra...) {
		h := rr.Header()
		key := nameKey(h.Name)
		switch rr := rr.(type) {
		case *dns.PTR:
			if key != nameKey(c.serviceType) {
				continue
			}
			if h.Ttl == 0 {
				delete(c.ptrs, nameKey(rr.Ptr))
			} else {
				c.ptrs[nameKey(rr.Ptr)] = rr
			}
		case *dns.SRV:
			if h.Ttl == 0 {
				delete(c.srvs, key)
			} else {
				c.srvs[key] = rr
			}
		case *dns.TXT:
			if h.Ttl > 0 {
				c.txts[key] = rr
			}
		case *dns.A:
			c.addAddr(key, rr.A, h.Ttl)
		case *dns.AAAA:
			c.addAddr(key, rr.AAAA, h.Ttl)
		}
	}
}

func (c *collection) addAddr(key string, ip net.IP, ttl uint32) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return
	}
	a = a.Unmap()
	list := slices.DeleteFunc(c.addrs[key], func(x netip.Addr) bool { return x == a })
	if ttl > 0 {
		list = append(list, a)
	}
	c.addrs[key] = list
}

// knownPTRs returns the PTR records already known, for known-answer
// suppression.
func (c *collection) knownPTRs() []dns.RR {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []dns.RR
	for _, ptr := range c.ptrs {
		out = append(out, dns.Copy(ptr))
	}
	return out
}

// missing returns the questions that would complete the instances seen.
func (c *collection) missing() []dns.Question {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []dns.Question
	for key, ptr := range c.ptrs {
		if c.srvs[key] == nil {
			out = append(out, dns.Question{Name: ptr.Ptr, Qtype: dns.TypeSRV, Qclass: dns.ClassINET})
		}
		if c.txts[key] == nil {
			out = append(out, dns.Question{Name: ptr.Ptr, Qtype: dns.TypeTXT, Qclass: dns.ClassINET})
		}
		if srv := c.srvs[key]; srv != nil && len(c.addrs[nameKey(srv.Target)]) == 0 {
			out = append(out,
				dns.Question{Name: srv.Target, Qtype: dns.TypeA, Qclass: dns.ClassINET},
				dns.Question{Name: srv.Target, Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
		}
	}
	slices.SortFunc(out, func(a, b dns.Question) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(out, func(a, b dns.Question) bool { return a == b })
}

// instances returns the instances with an SRV record, sorted by name.
func (c *collection) instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Instance
	for key, ptr := range c.ptrs {
		srv := c.srvs[key]
		if srv == nil {
			continue
		}
		in := Instance{
			Name:  firstLabel(ptr.Ptr),
			Host:  srv.Target,
			Port:  srv.Port,
			Addrs: slices.Clone(c.addrs[nameKey(srv.Target)]),
			TXT:   map[string]string{},
		}
		if txt := c.txts[key]; txt != nil {
			for _, s := range txt.Txt {
				k, v, _ := strings.Cut(unescapeTXT(s), "=")
				if _, dup := in.TXT[k]; k != "" && !dup {
					in.TXT[k] = v
				}
			}
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// String describes the instance for logs.
func (in Instance) String() string {
	return fmt.Sprintf("%q at %s:%d %v", in.Name, in.Host, in.Port, in.Addrs)
}
