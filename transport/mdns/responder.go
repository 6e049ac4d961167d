package mdns

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
)

const (
	probeInterval    = 250 * time.Millisecond
	probeCount       = 3
	announceInterval = time.Second
	tieBreakWait     = time.Second
	// maxProbeRounds bounds the renames and lost tie-breaks before Start
	// gives up with ErrNameConflict.
	maxProbeRounds = 32
	// addrRefresh is how often the responder looks for new addresses.
	addrRefresh = 10 * time.Second
	// ownRecordGrace is how long records the responder published before a
	// change still count as its own, so its own packets still in flight do
	// not look like a conflict.
	ownRecordGrace = 5 * time.Second
	// maxDelayed bounds the multicast replies waiting out their random
	// delay; more are dropped rather than queued.
	maxDelayed = 64
)

// Config configures a Responder.
type Config struct {
	// Instance is the instance name, for example "Tally on node1".
	Instance string
	// Host is the host name the SRV records point to, for example
	// "node1.local.". If another mDNS daemon (avahi) runs on the same
	// machine, pick a name other than the machine's own, or make sure
	// Addrs returns the addresses that daemon announces.
	Host string
	// Services are the services published at start.
	Services []Service
	// Addrs returns the current addresses of the host (A and AAAA records).
	// It is called at each probe and every few seconds after. The default
	// is the addresses of the interfaces served.
	Addrs func() []netip.Addr
	// Interfaces are the interfaces to serve; empty means every interface
	// that is up and can multicast.
	Interfaces []net.Interface
	// Logger receives the responder's logs; the default discards them.
	Logger *slog.Logger
	// Now returns the current time; the default is time.Now.
	Now func() time.Time
	// After waits like time.After, which is the default.
	After func(time.Duration) <-chan time.Time
	// Random supplies the random delays RFC 6762 asks for; the default is
	// seeded from the runtime. The responder serialises its use.
	Random *rand.Rand
	// Listen opens the sockets; the default binds with SO_REUSEADDR and
	// SO_REUSEPORT.
	Listen ListenFunc
}

// Stats are the responder's counters.
type Stats struct {
	Received  uint64 // datagrams read
	Malformed uint64 // datagrams dropped because they are not DNS messages
	Ignored   uint64 // queries dropped for a non-zero opcode or rcode or a foreign interface
	Answered  uint64 // replies sent
	Conflicts uint64 // names given up because another host claimed them
}

// sender sends a datagram; the sockets are the real one.
type sender interface {
	send(b []byte, dst netip.AddrPort, ifIndex int) error
}

// outgoing is a packed reply waiting to be sent.
type outgoing struct {
	data    []byte
	dst     netip.AddrPort
	ifIndex int
	delay   time.Duration
}

// probeResult is what the packet handler tells a running probe.
type probeResult struct {
	instance, host, lostTie bool
}

// Responder publishes services over Multicast DNS. It is safe for
// concurrent use.
type Responder struct {
	cfg Config
	log *slog.Logger

	received, malformed, ignored, answered, conflicts atomic.Uint64

	probeEvents    chan probeResult // conflicts with the names being probed
	conflictEvents chan probeResult // conflicts with the published names
	changed        chan struct{}    // services or addresses changed
	stop           chan struct{}    // closed by Close
	done           chan struct{}    // closed when the responder has stopped
	delayed        sync.WaitGroup   // replies waiting out their delay
	delaySlots     chan struct{}

	mu            sync.Mutex
	started       bool
	closed        bool
	services      []Service
	instance      string
	host          string
	instanceRound int
	hostRound     int
	published     *zone
	previous      []dns.RR // records published before the last change
	previousUntil time.Time
	probing       *zone
	probeNames    map[string]bool
	lastMulticast map[string]time.Time
	out           sender
	ifIndexes     map[int]bool
}

// NewResponder checks cfg and returns a responder that has not started.
func NewResponder(cfg Config) (*Responder, error) {
	host, err := canonicalName(dns.Fqdn(cfg.Host))
	if err != nil {
		return nil, fmt.Errorf("%w: host name %q: %v", ErrInvalidConfig, cfg.Host, err)
	}
	if _, err := newZone(cfg.Instance, host, cfg.Services, nil); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Random == nil {
		cfg.Random = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Listen == nil {
		cfg.Listen = listenShared
	}
	return &Responder{
		cfg:            cfg,
		log:            cfg.Logger,
		probeEvents:    make(chan probeResult, 4),
		conflictEvents: make(chan probeResult, 4),
		changed:        make(chan struct{}, 1),
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
		delaySlots:     make(chan struct{}, maxDelayed),
		services:       slices.Clone(cfg.Services),
		instance:       cfg.Instance,
		host:           host,
		lastMulticast:  map[string]time.Time{},
	}, nil
}

// Start opens the sockets, probes for the names and announces the
// services; it returns once the names are settled and the first
// announcement is sent, or with an error. ctx bounds the start only; the
// responder then answers queries until Close, which says goodbye.
func (r *Responder) Start(ctx context.Context) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.started:
		r.mu.Unlock()
		return ErrStarted
	}
	r.started = true
	r.mu.Unlock()

	ifaces, err := multicastInterfaces(r.cfg.Interfaces)
	if err != nil {
		close(r.done)
		return err
	}
	socks, err := openSockets(ctx, r.cfg.Listen, ifaces, r.log)
	if err != nil {
		close(r.done)
		return err
	}
	if r.cfg.Addrs == nil {
		served := socks.ifaces
		r.cfg.Addrs = func() []netip.Addr { return interfaceAddrs(served) }
	}
	r.mu.Lock()
	r.out = socks
	r.ifIndexes = map[int]bool{}
	for _, ifi := range socks.ifaces {
		r.ifIndexes[ifi.Index] = true
	}
	r.mu.Unlock()
	served := make(chan struct{})
	go func() {
		defer close(served)
		socks.serve(r.handlePacket)
	}()
	// ctx bounds the start only: once the names are published the
	// responder runs until Close.
	runCtx, cancel := context.WithCancel(context.Background())
	stopWatching := context.AfterFunc(ctx, cancel)
	ready := make(chan error, 1)
	go func() {
		defer close(r.done)
		defer cancel()
		err := r.manage(runCtx, ready)
		r.sendGoodbye()
		r.delayed.Wait()
		if cerr := socks.close(); cerr != nil {
			r.log.Debug("mdns: closing sockets", "err", cerr)
		}
		<-served
		ready <- err
	}()
	err = <-ready
	stopWatching()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Close says goodbye, leaves the multicast groups and waits for the
// responder to stop. Closing twice is harmless.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	started := r.started
	r.mu.Unlock()
	close(r.stop)
	if started {
		<-r.done
	}
	return nil
}

// SetServices replaces the published services: removed ones get a
// goodbye, new ones are probed and announced, changed ones announced
// again. It returns before that happens.
func (r *Responder) SetServices(services []Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, err := newZone(r.instance, r.host, services, nil); err != nil {
		return err
	}
	r.services = slices.Clone(services)
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

// Names returns the instance and host names in use, which differ from
// the configured ones after a conflict.
func (r *Responder) Names() (instance, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.instance, r.host
}

// Stats returns the responder's counters.
func (r *Responder) Stats() Stats {
	return Stats{
		Received:  r.received.Load(),
		Malformed: r.malformed.Load(),
		Ignored:   r.ignored.Load(),
		Answered:  r.answered.Load(),
		Conflicts: r.conflicts.Load(),
	}
}

// manage probes, announces and reacts to conflicts and changes until ctx
// is done or Close is called. The first result, nil once the names are
// published or the error that prevented it, goes to ready.
func (r *Responder) manage(ctx context.Context, ready chan<- error) error {
	isReady := false
	rounds := 0
	for {
		z, err := r.buildZone()
		if err != nil {
			return err
		}
		names := r.namesToProbe(z)
		if len(names) > 0 {
			res, stopped := r.probe(ctx, z, names)
			if stopped {
				if isReady {
					return nil
				}
				return r.stopErr(ctx)
			}
			if res.instance || res.host || res.lostTie {
				if rounds++; rounds >= maxProbeRounds {
					if isReady {
						r.log.Error("mdns: giving up after repeated name conflicts", "instance", z.instance, "host", z.host)
						return nil
					}
					return fmt.Errorf("%w: after %d rounds, last tried %q on %s", ErrNameConflict, rounds, z.instance, z.host)
				}
				if res.lostTie {
					if r.wait(ctx, tieBreakWait) {
						return r.stopErr(ctx)
					}
				}
				r.rename(res)
				continue
			}
		}
		rounds = 0
		r.publish(z)
		if !isReady {
			isReady = true
			ready <- nil
		}
		r.log.Info("mdns: announcing", "instance", z.instance, "host", z.host, "services", len(z.services))
		r.announce(z)
		if r.wait(ctx, announceInterval) {
			return nil
		}
		r.announce(z)
		if r.waitForChange(ctx, z) {
			return nil
		}
	}
}

func (r *Responder) stopErr(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrClosed
}

// waitForChange blocks until the published zone must be rebuilt: a
// conflict, new services or new addresses. It reports whether the
// responder is stopping.
func (r *Responder) waitForChange(ctx context.Context, z *zone) bool {
	for {
		select {
		case <-ctx.Done():
			return true
		case <-r.stop:
			return true
		case ev := <-r.conflictEvents:
			r.log.Warn("mdns: another host claims our name", "instance", z.instance, "host", z.host,
				"instance_conflict", ev.instance, "host_conflict", ev.host)
			r.rename(ev)
			return false
		case <-r.changed:
			return false
		case <-r.cfg.After(addrRefresh):
			if !slices.Equal(normalAddrs(r.cfg.Addrs()), z.addrs) {
				return false
			}
		}
	}
}

// wait sleeps for d and reports whether the responder is stopping.
func (r *Responder) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return true
	case <-r.stop:
		return true
	case <-r.cfg.After(d):
		return false
	}
}

// buildZone builds the zone for the current names, services and
// addresses.
func (r *Responder) buildZone() (*zone, error) {
	addrs := r.cfg.Addrs()
	r.mu.Lock()
	defer r.mu.Unlock()
	return newZone(r.instance, r.host, r.services, addrs)
}

// namesToProbe returns the unique names of z that are not published yet.
func (r *Responder) namesToProbe(z *zone) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for key := range z.owned {
		if r.published == nil || !r.published.owned[key] {
			out[key] = true
		}
	}
	return out
}

// rename picks the next instance or host name after a conflict: "Tally on
// node1 (2)", "node1-2.local.".
func (r *Responder) rename(res probeResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.instance {
		r.instanceRound++
		r.instance = fmt.Sprintf("%s (%d)", truncateLabel(r.cfg.Instance, maxLabel-8), r.instanceRound+1)
		r.conflicts.Add(1)
	}
	if res.host {
		r.hostRound++
		label := firstLabel(r.cfg.Host)
		host, err := canonicalName(escapeLabel(fmt.Sprintf("%s-%d", truncateLabel(label, maxLabel-6), r.hostRound+1)) + localSuffix)
		if err == nil {
			r.host = host
		}
		r.conflicts.Add(1)
	}
}

// truncateLabel cuts s to at most n bytes without splitting a UTF-8
// sequence.
func truncateLabel(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && !utf8.ValidString(s); i++ {
		s = s[:len(s)-1]
	}
	return s
}

// probe runs the three probes for names of z. It returns what the packet
// handler saw, and whether the responder is stopping.
func (r *Responder) probe(ctx context.Context, z *zone, names map[string]bool) (probeResult, bool) {
	r.mu.Lock()
	r.probing, r.probeNames = z, names
	delay := time.Duration(r.cfg.Random.Int64N(int64(probeInterval)))
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.probing, r.probeNames = nil, nil
		r.mu.Unlock()
	}()
	for len(r.probeEvents) > 0 {
		<-r.probeEvents
	}
	b, err := z.probe(names).Pack()
	if err != nil {
		r.log.Error("mdns: cannot pack probe", "err", err)
		return probeResult{}, false
	}
	wait := delay
	for i := 0; i <= probeCount; i++ {
		select {
		case <-ctx.Done():
			return probeResult{}, true
		case <-r.stop:
			return probeResult{}, true
		case res := <-r.probeEvents:
			r.log.Info("mdns: name taken while probing", "instance", z.instance, "host", z.host,
				"instance_conflict", res.instance, "host_conflict", res.host, "lost_tie_break", res.lostTie)
			return res, false
		case <-r.cfg.After(wait):
		}
		if i == probeCount {
			break
		}
		r.sendMulticast(b)
		wait = probeInterval
	}
	return probeResult{}, false
}

// publish makes z the zone the responder answers from, and says goodbye
// to the records the previous zone had and z has not (unless the names
// changed for a conflict: those records now belong to someone else).
func (r *Responder) publish(z *zone) {
	r.mu.Lock()
	old := r.published
	r.published = z
	r.lastMulticast = map[string]time.Time{}
	if old != nil {
		r.previous = old.uniqueRecords()
		r.previousUntil = r.cfg.Now().Add(ownRecordGrace)
	}
	r.mu.Unlock()
	if old == nil || old.instance != z.instance || old.host != z.host {
		return
	}
	if m := goodbyeFor(old, z); m != nil {
		if b, err := m.Pack(); err == nil {
			r.sendMulticast(b)
		}
	}
}

// announce multicasts every record of z.
func (r *Responder) announce(z *zone) {
	m := z.announcement(false)
	b, err := m.Pack()
	if err != nil {
		r.log.Error("mdns: cannot pack announcement", "err", err)
		return
	}
	r.markMulticast(m.Answer)
	r.sendMulticast(b)
}

// sendGoodbye withdraws every published record.
func (r *Responder) sendGoodbye() {
	r.mu.Lock()
	z := r.published
	r.published = nil
	r.mu.Unlock()
	if z == nil {
		return
	}
	if b, err := z.announcement(true).Pack(); err == nil {
		r.sendMulticast(b)
	}
}

// sendMulticast sends b to both groups on every interface.
func (r *Responder) sendMulticast(b []byte) {
	r.mu.Lock()
	out := r.out
	r.mu.Unlock()
	if out == nil {
		return
	}
	for _, dst := range []netip.AddrPort{multicastV4, multicastV6} {
		if err := out.send(b, dst, 0); err != nil {
			r.log.Debug("mdns: send", "to", dst, "err", err)
		}
	}
}

// handlePacket answers one received datagram.
func (r *Responder) handlePacket(p packet) {
	for _, o := range r.replies(p) {
		r.answered.Add(1)
		if o.delay == 0 {
			r.sendTo(o)
			continue
		}
		select {
		case r.delaySlots <- struct{}{}:
		default:
			continue
		}
		r.delayed.Add(1)
		go func() {
			defer r.delayed.Done()
			defer func() { <-r.delaySlots }()
			select {
			case <-r.stop:
			case <-r.cfg.After(o.delay):
				r.sendTo(o)
			}
		}()
	}
}

func (r *Responder) sendTo(o outgoing) {
	r.mu.Lock()
	out := r.out
	r.mu.Unlock()
	if out == nil {
		return
	}
	if err := out.send(o.data, o.dst, o.ifIndex); err != nil {
		r.log.Debug("mdns: send reply", "to", o.dst, "err", err)
	}
}

// replies decodes p, tells a running probe or the manager about
// conflicts, and returns the packed replies. It never panics on any
// input; it is what FuzzHandle exercises.
func (r *Responder) replies(p packet) []outgoing {
	r.received.Add(1)
	r.mu.Lock()
	served := r.ifIndexes == nil || p.ifIndex == 0 || r.ifIndexes[p.ifIndex]
	r.mu.Unlock()
	if !served {
		r.ignored.Add(1)
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(p.data); err != nil {
		r.malformed.Add(1)
		return nil
	}
	r.mu.Lock()
	probing, probeNames, z := r.probing, r.probeNames, r.published
	var previous []dns.RR
	if r.cfg.Now().Before(r.previousUntil) {
		previous = r.previous
	}
	r.mu.Unlock()
	if m.Response {
		if probing != nil {
			if instance, host := probing.conflict(m, probeNames, nil); instance || host {
				notify(r.probeEvents, probeResult{instance: instance, host: host})
			}
		}
		if z != nil {
			if instance, host := z.conflict(m, z.owned, previous); instance || host {
				notify(r.conflictEvents, probeResult{instance: instance, host: host})
			}
		}
		return nil
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		r.ignored.Add(1)
		return nil
	}
	if probing != nil && probing.lostTieBreak(m, probeNames) {
		notify(r.probeEvents, probeResult{lostTie: true})
	}
	if z == nil {
		return nil
	}
	var out []outgoing
	for _, rep := range z.respond(m, p.src, r.recent) {
		b, err := rep.msg.Pack()
		if err != nil {
			r.log.Debug("mdns: cannot pack reply", "err", err)
			continue
		}
		o := outgoing{data: b, dst: p.src, ifIndex: p.ifIndex}
		if !rep.unicast {
			o.dst = multicastV4
			if p.src.Addr().Is6() {
				o.dst = multicastV6
			}
			r.markMulticast(rep.msg.Answer)
			if rep.delay {
				r.mu.Lock()
				o.delay = 20*time.Millisecond + time.Duration(r.cfg.Random.Int64N(int64(100*time.Millisecond)))
				r.mu.Unlock()
			}
		}
		out = append(out, o)
	}
	return out
}

func notify(ch chan probeResult, res probeResult) {
	select {
	case ch <- res:
	default:
	}
}

// markMulticast notes that rrs were just multicast.
func (r *Responder) markMulticast(rrs []dns.RR) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rr := range rrs {
		r.lastMulticast[recordKey(rr)] = now
	}
}

// recent reports whether rr was multicast within a quarter of its TTL,
// which lets a QU question be answered by unicast (RFC 6762 section 5.4).
func (r *Responder) recent(rr dns.RR) bool {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.lastMulticast[recordKey(rr)]
	return ok && now.Sub(t) < time.Duration(rr.Header().Ttl)*time.Second/4
}

func recordKey(rr dns.RR) string {
	return nameKey(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype] + "/" + hex.EncodeToString(rdata(rr))
}

// normalAddrs returns addrs as newZone keeps them.
func normalAddrs(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
