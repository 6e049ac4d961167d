package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Scan and online-check bounds.
const (
	// DefaultScanTimeout is how long a scan collects answers by default.
	DefaultScanTimeout = 6 * time.Second
	// DefaultPingTimeout is how long Ping waits by default.
	DefaultPingTimeout = 2 * time.Second
	// MaxScanTargets bounds the addresses one scan sends to (a /16).
	MaxScanTargets = 65536
	// MaxScanResults bounds the devices one scan keeps.
	MaxScanResults = 4096
	// MaxPingTargets bounds the devices one Ping checks.
	MaxPingTargets = 4096
	// inboxSize is how many answers wait for a scan or ping to take them.
	inboxSize = 1024
)

// ScanOptions says where a scan sends SCAN and for how long it listens.
type ScanOptions struct {
	// Targets are broadcast, directed-broadcast or unicast addresses, each
	// with the agents' port (normally DefaultPort); see Targets.
	Targets []netip.AddrPort
	// Timeout is how long the scan listens; DefaultScanTimeout if zero.
	Timeout time.Duration
	// OnFound, if set, is called with each device the first time it
	// answers, on the scan's goroutine; it must not block for long.
	OnFound func(Found)
}

// Found is a device that answered a scan.
type Found struct {
	// From is the address the PRESENT came from.
	From netip.AddrPort
	// HostIDs are the device's identities; the first is its device ID.
	HostIDs []HostID
	Alias   string
	// Onboarded tells whether the device is onboarded, and OnboardedWith
	// the licensing ID fingerprint of the server it is onboarded with, if
	// it said.
	Onboarded     bool
	OnboardedWith Fingerprint
	// Here is true when it is onboarded with this server's licensing ID.
	Here bool
	// At is when the answer arrived.
	At time.Time
}

// DeviceID returns the device's first HostID.
func (f Found) DeviceID() HostID {
	if len(f.HostIDs) == 0 {
		return HostID{}
	}
	return f.HostIDs[0]
}

// ScanProgress is a snapshot of a running or finished scan.
type ScanProgress struct {
	// Targets is how many addresses the scan sends to; Sent how many SCANs
	// went out and Failed how many the socket refused.
	Targets, Sent, Failed int
	// Answered is the number of distinct devices that answered.
	Answered int
	// Started is when the scan began, Elapsed how long it has run and
	// Timeout how long it runs at most.
	Started time.Time
	Elapsed time.Duration
	Timeout time.Duration
	// Done is true once the scan no longer listens.
	Done bool
}

// ScanJob is a running scan. Its methods are safe for concurrent use.
type ScanJob struct {
	r       *Responder
	nonce   Nonce
	opts    ScanOptions
	inbox   chan answer
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time

	mu       sync.Mutex
	sent     int
	failed   int
	found    []Found
	seen     map[HostID]int
	finished time.Time
}

type answer struct {
	p    Packet
	from netip.AddrPort
}

// scanWaiter routes PRESENTs to a job without blocking Serve.
type scanWaiter struct{ inbox chan answer }

func (w scanWaiter) deliver(p Packet, from netip.AddrPort) bool {
	if p.Type != TypePresent {
		return false
	}
	select {
	case w.inbox <- answer{p, from}:
		return true
	default:
		return false
	}
}

// Scan broadcasts (or sends to each unicast target) a SCAN whose reply
// port is the Responder's own, and collects PRESENT answers, one per device
// (by its first HostID), until opts.Timeout passes or ctx ends. Answers
// reach the scan only while Serve runs. It returns at once; follow the scan
// with Progress, Results and Done.
func (r *Responder) Scan(ctx context.Context, opts ScanOptions) (*ScanJob, error) {
	if len(opts.Targets) == 0 || len(opts.Targets) > MaxScanTargets {
		return nil, fmt.Errorf("%w: a scan needs 1 to %d targets, not %d", ErrConfig, MaxScanTargets, len(opts.Targets))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultScanTimeout
	}
	port := localPort(r.cfg.Conn)
	if port == 0 {
		return nil, fmt.Errorf("%w: the responder's socket has no UDP port", ErrConfig)
	}
	var job *ScanJob
	for range 4 { // a nonce collision is a broken random source, not bad luck
		nonce, err := newNonce(r.cfg.Random)
		if err != nil {
			return nil, err
		}
		job = &ScanJob{r: r, nonce: nonce, opts: opts, inbox: make(chan answer, inboxSize),
			done: make(chan struct{}), started: r.cfg.Now(), seen: map[HostID]int{}}
		if r.register(nonce, scanWaiter{job.inbox}) {
			break
		}
		job = nil
	}
	if job == nil {
		return nil, fmt.Errorf("%w: the random source repeats nonces", ErrConfig)
	}
	packet, err := EncodeRequest(Packet{Type: TypeScan, Nonce: job.nonce, ReplyPort: port, Fingerprint: r.fingerprint})
	if err != nil {
		r.unregister(job.nonce)
		return nil, err
	}
	ctx, job.cancel = context.WithTimeout(ctx, opts.Timeout)
	go job.run(ctx, packet)
	return job, nil
}

func (j *ScanJob) run(ctx context.Context, packet []byte) {
	defer close(j.done)
	defer j.cancel()
	defer j.r.unregister(j.nonce)
	for _, t := range j.opts.Targets {
		if ctx.Err() != nil {
			break
		}
		err := send(j.r.cfg.Conn, &j.r.counters, TypeScan, packet, t)
		j.mu.Lock()
		if err != nil {
			j.failed++
		} else {
			j.sent++
		}
		j.mu.Unlock()
		// Answers may come in while a long range is still being walked.
		j.drain()
	}
	for {
		select {
		case <-ctx.Done():
			j.drain()
			j.mu.Lock()
			j.finished = j.r.cfg.Now()
			j.mu.Unlock()
			return
		case a := <-j.inbox:
			j.add(a)
		}
	}
}

// drain takes the answers already waiting, without blocking.
func (j *ScanJob) drain() {
	for range inboxSize {
		select {
		case a := <-j.inbox:
			j.add(a)
		default:
			return
		}
	}
}

func (j *ScanJob) add(a answer) {
	f := Found{From: a.from, HostIDs: a.p.HostIDs, Alias: a.p.Alias, Onboarded: a.p.Onboarded,
		OnboardedWith: a.p.OnboardedWith, At: j.r.cfg.Now()}
	f.Here = f.Onboarded && f.OnboardedWith == j.r.fingerprint
	j.mu.Lock()
	if _, dup := j.seen[f.DeviceID()]; dup || len(j.found) >= MaxScanResults {
		j.mu.Unlock()
		return
	}
	j.seen[f.DeviceID()] = len(j.found)
	j.found = append(j.found, f)
	j.mu.Unlock()
	if j.opts.OnFound != nil {
		j.opts.OnFound(f)
	}
}

// Progress returns how far the scan has got.
func (j *ScanJob) Progress() ScanProgress {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := ScanProgress{Targets: len(j.opts.Targets), Sent: j.sent, Failed: j.failed, Answered: len(j.found),
		Started: j.started, Timeout: j.opts.Timeout, Done: !j.finished.IsZero()}
	end := j.finished
	if end.IsZero() {
		end = j.r.cfg.Now()
	}
	p.Elapsed = max(0, end.Sub(j.started))
	return p
}

// Results returns the devices found so far, in the order they answered.
func (j *ScanJob) Results() []Found {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.found)
}

// Done is closed when the scan has stopped listening.
func (j *ScanJob) Done() <-chan struct{} { return j.done }

// Cancel stops the scan early; Done is closed soon after.
func (j *ScanJob) Cancel() { j.cancel() }

// Presence is the answer of one device to an online check.
type Presence struct {
	// Online is true when the device answered PONG.
	Online bool
	// DeviceID is the device ID its PONG carried.
	DeviceID HostID
	// From is where the PONG came from, and RTT how long it took.
	From netip.AddrPort
	RTT  time.Duration
}

// pingWaiter routes the PONGs of one Ping call.
type pingWaiter struct{ inbox chan answer }

func (w pingWaiter) deliver(p Packet, from netip.AddrPort) bool {
	if p.Type != TypePong {
		return false
	}
	select {
	case w.inbox <- answer{p, from}:
		return true
	default:
		return false
	}
}

// Ping sends a PING with its own nonce to each target and waits until all
// have answered PONG, timeout passes (DefaultPingTimeout if zero) or ctx
// ends. Every target is in the result; those that did not answer are
// offline. Answers reach Ping only while Serve runs.
func (r *Responder) Ping(ctx context.Context, targets []netip.AddrPort, timeout time.Duration) (map[netip.AddrPort]Presence, error) {
	if len(targets) > MaxPingTargets {
		return nil, fmt.Errorf("%w: %d ping targets, at most %d", ErrConfig, len(targets), MaxPingTargets)
	}
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	out := make(map[netip.AddrPort]Presence, len(targets))
	w := pingWaiter{inbox: make(chan answer, min(inboxSize, len(targets)+1))}
	byNonce := make(map[Nonce]netip.AddrPort, len(targets))
	sentAt := make(map[Nonce]time.Time, len(targets))
	defer func() {
		for n := range byNonce {
			r.unregister(n)
		}
	}()
	for _, t := range targets {
		if _, dup := out[t]; dup {
			continue
		}
		out[t] = Presence{}
		n, err := newNonce(r.cfg.Random)
		if err != nil {
			return nil, err
		}
		if !r.register(n, w) {
			return nil, fmt.Errorf("%w: the random source repeats nonces", ErrConfig)
		}
		byNonce[n] = t
		b, err := EncodeRequest(Packet{Type: TypePing, Nonce: n})
		if err != nil {
			return nil, err
		}
		sentAt[n] = r.cfg.Now()
		if err := send(r.cfg.Conn, &r.counters, TypePing, b, t); err != nil {
			r.cfg.Logger.Debug("discovery: cannot send a ping", "to", t, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for waiting := len(out); waiting > 0; {
		select {
		case <-ctx.Done():
			return out, nil
		case a := <-w.inbox:
			t, ok := byNonce[a.p.Nonce]
			if !ok || out[t].Online {
				continue
			}
			out[t] = Presence{Online: true, DeviceID: a.p.DeviceID, From: a.from, RTT: r.cfg.Now().Sub(sentAt[a.p.Nonce])}
			waiting--
		}
	}
	return out, nil
}

// Targets pairs each address with port.
func Targets(addrs []netip.Addr, port uint16) []netip.AddrPort {
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, port)
	}
	return out
}
