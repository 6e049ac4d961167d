package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/discovery"
)

// The discovery routes. A scan sends SCAN to the broadcast addresses (or to
// the targets given) through Config.Discovery and runs in the background for
// its timeout; the devices that answer are kept in memory on this node, one
// per device ID (the first hostid), and updated by later scans and online
// checks. They are not replicated: another node knows only what it scanned
// itself, and a restart forgets them. Nothing here changes the replicated
// state, so nothing is in the audit log; scans, online checks and magic
// packets are logged at info level with the user and address.

const (
	// maxDiscoveryBody bounds the body of a scan or wake request.
	maxDiscoveryBody = 64 << 10
	// maxScanAddresses bounds the addresses one scan request may name,
	// ranges walked host by host.
	maxScanAddresses = 4096
	// maxScanTimeout bounds a scan's timeout.
	maxScanTimeout = 5 * time.Minute
	// maxDiscovered bounds the devices kept; past it the one seen longest
	// ago is forgotten.
	maxDiscovered = discovery.MaxScanResults
)

// discoveryState is what this node knows of discovered devices and its
// current or last scan.
type discoveryState struct {
	// ctx is the context scans run in, past the request that started them;
	// stop cancels it.
	ctx  context.Context
	stop context.CancelFunc

	scanMu sync.Mutex
	job    *discovery.ScanJob

	mu      sync.Mutex
	devices map[hostid.HostID]*discoveredDevice
	order   []hostid.HostID // first seen first
}

func newDiscoveryState() *discoveryState {
	ctx, stop := context.WithCancel(context.Background())
	return &discoveryState{ctx: ctx, stop: stop, devices: map[hostid.HostID]*discoveredDevice{}}
}

// discoveredDevice is one device as the discovery routes show it.
type discoveredDevice struct {
	Address string          `json:"address"`
	HostIDs []hostid.HostID `json:"hostIds"`
	Alias   string          `json:"alias"`
	// Onboarded tells whether the device says it is onboarded, Fingerprint
	// the licensing ID it is onboarded with (if it said) and Here whether
	// that is this server's.
	Onboarded   bool   `json:"onboarded"`
	Fingerprint string `json:"fingerprint"`
	Here        bool   `json:"here"`
	LastSeen    string `json:"lastSeen"`
	Online      bool   `json:"online"`

	addr netip.AddrPort
}

// localBroadcastAddrs is the default Config.BroadcastTargets.
func localBroadcastAddrs() []netip.Addr {
	ifaces, err := discovery.LocalInterfaces()
	if err != nil {
		return []netip.Addr{discovery.LimitedBroadcast()}
	}
	return discovery.BroadcastAddrs(ifaces)
}

// convertHostIDs turns a device's hostids into core's, in canonical form;
// those that are not valid hostids are left out.
func convertHostIDs(in []discovery.HostID) []hostid.HostID {
	out := make([]hostid.HostID, 0, len(in))
	for _, h := range in {
		id, err := hostid.New(h.Value, hostid.Type(h.Type))
		if err == nil {
			out = append(out, id)
		}
	}
	return out
}

// record merges a device that answered a scan.
func (s *Server) recordFound(f discovery.Found) {
	ids := convertHostIDs(f.HostIDs)
	if len(ids) == 0 || !f.From.IsValid() {
		return
	}
	fp := ""
	if !f.OnboardedWith.IsZero() {
		fp = f.OnboardedWith.String()
	}
	now := s.cfg.Now().UTC()
	d := s.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	key := ids[0]
	dev, ok := d.devices[key]
	if !ok {
		if len(d.order) >= maxDiscovered {
			d.forgetOldest()
		}
		dev = &discoveredDevice{}
		d.devices[key] = dev
		d.order = append(d.order, key)
	}
	dev.addr = f.From
	dev.Address = f.From.String()
	dev.HostIDs = ids
	dev.Alias = f.Alias
	dev.Onboarded, dev.Fingerprint, dev.Here = f.Onboarded, fp, f.Here
	dev.LastSeen = now.Format(time.RFC3339)
	dev.Online = true
	s.hub.raise(topicDiscovery)
}

// forgetOldest drops the device seen longest ago; d.mu is held.
func (d *discoveryState) forgetOldest() {
	oldest := -1
	for i, k := range d.order {
		if oldest < 0 || d.devices[k].LastSeen < d.devices[d.order[oldest]].LastSeen {
			oldest = i
		}
	}
	if oldest >= 0 {
		delete(d.devices, d.order[oldest])
		d.order = slices.Delete(d.order, oldest, oldest+1)
	}
}

// snapshot copies the discovered devices, first seen first.
func (d *discoveryState) snapshot() []discoveredDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]discoveredDevice, 0, len(d.order))
	for _, k := range d.order {
		dev := *d.devices[k]
		dev.HostIDs = slices.Clone(dev.HostIDs)
		out = append(out, dev)
	}
	return out
}

// requireDiscovery refuses a discovery route on a node without a responder.
func (s *Server) requireDiscovery() error {
	if s.cfg.Discovery == nil {
		return fmt.Errorf("%w: discovery is not configured on this node", errNotAvailable)
	}
	return nil
}

// scanRequest is the body of POST /api/v1/discovery/scan.
type scanRequest struct {
	Targets        []string `json:"targets"`
	TimeoutSeconds *float64 `json:"timeoutSeconds"`
}

// scanProgress is the JSON form of discovery.ScanProgress; durations are
// in seconds.
type scanProgress struct {
	Targets  int     `json:"targets"`
	Sent     int     `json:"sent"`
	Failed   int     `json:"failed"`
	Answered int     `json:"answered"`
	Started  string  `json:"started"`
	Elapsed  float64 `json:"elapsed"`
	Timeout  float64 `json:"timeout"`
	Done     bool    `json:"done"`
}

func progressOf(p discovery.ScanProgress) *scanProgress {
	return &scanProgress{Targets: p.Targets, Sent: p.Sent, Failed: p.Failed, Answered: p.Answered,
		Started: p.Started.UTC().Format(time.RFC3339), Elapsed: p.Elapsed.Seconds(), Timeout: p.Timeout.Seconds(), Done: p.Done}
}

// scanStatusResponse answers GET /api/v1/discovery/scan; Progress is null
// when no scan has run on this node.
type scanStatusResponse struct {
	Progress *scanProgress `json:"progress"`
	Found    int           `json:"found"`
}

// parseScanTargets reads the targets of a scan: an IP (with port), an
// IP:PORT (for tests and agents on another port), or a CIDR walked host by
// host, at most maxScanAddresses in all and without repeats.
func parseScanTargets(in []string, port uint16) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	add := func(ap netip.AddrPort) error {
		if seen[ap] {
			return nil
		}
		if len(out) >= maxScanAddresses {
			return fmt.Errorf("%w: more than %d addresses", errTooManyTargets, maxScanAddresses)
		}
		seen[ap] = true
		out = append(out, ap)
		return nil
	}
	for _, t := range in {
		if prefix, err := netip.ParsePrefix(t); err == nil {
			prefix = prefix.Masked()
			hostBits := prefix.Addr().BitLen() - prefix.Bits()
			if hostBits > 12 {
				return nil, fmt.Errorf("%w: %s holds more than %d addresses", errTooManyTargets, t, maxScanAddresses)
			}
			first, last := prefix.Addr(), lastAddr(prefix)
			if prefix.Addr().Is4() && hostBits >= 2 {
				// Leave out the network and broadcast addresses.
				first, last = first.Next(), last.Prev()
			}
			for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
				if err := add(netip.AddrPortFrom(a, port)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if ap, err := netip.ParseAddrPort(t); err == nil {
			if ap.Port() == 0 {
				return nil, fmt.Errorf("%w: %q has port 0", errBadTarget, t)
			}
			if err := add(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())); err != nil {
				return nil, err
			}
			continue
		}
		if a, err := netip.ParseAddr(t); err == nil {
			if err := add(netip.AddrPortFrom(a.Unmap(), port)); err != nil {
				return nil, err
			}
			continue
		}
		return nil, fmt.Errorf("%w: %q is not an IP address, IP:PORT or CIDR range", errBadTarget, t)
	}
	return out, nil
}

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// scanTimeout reads a timeout in seconds; nil means the default.
func scanTimeout(sec *float64) (time.Duration, error) {
	if sec == nil {
		return discovery.DefaultScanTimeout, nil
	}
	v := *sec
	if math.IsNaN(v) || v <= 0 || v > maxScanTimeout.Seconds() {
		return 0, fmt.Errorf("%w: timeoutSeconds %v is not above 0 and at most %v", errBadTimeout, v, maxScanTimeout.Seconds())
	}
	return time.Duration(v * float64(time.Second)), nil
}

// readOptionalJSON reads a JSON body into v like readJSON, but takes an
// empty body without a Content-Type as {}.
func readOptionalJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return nil
	}
	return readJSON(w, r, limit, v)
}

func (s *Server) startScan(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireDiscovery(); err != nil {
		return err
	}
	var req scanRequest
	if err := readOptionalJSON(w, r, maxDiscoveryBody, &req); err != nil {
		return err
	}
	timeout, err := scanTimeout(req.TimeoutSeconds)
	if err != nil {
		return err
	}
	targets, err := parseScanTargets(req.Targets, s.cfg.DiscoveryPort)
	if err != nil {
		return err
	}
	if len(req.Targets) == 0 {
		targets = discovery.Targets(s.cfg.BroadcastTargets(), s.cfg.DiscoveryPort)
	}
	d := s.disc
	d.scanMu.Lock()
	defer d.scanMu.Unlock()
	if d.job != nil && !d.job.Progress().Done {
		return fmt.Errorf("%w: wait for it to end (GET /api/v1/discovery/scan)", errScanRunning)
	}
	job, err := s.cfg.Discovery.Scan(d.ctx, discovery.ScanOptions{Targets: targets, Timeout: timeout, OnFound: s.recordFound})
	if err != nil {
		return err
	}
	d.job = job
	// The UI shows the scan's progress: it hears of the start here, of
	// each device found from recordFound, and of the end.
	s.hub.raise(topicDiscovery)
	go func() {
		<-job.Done()
		s.hub.raise(topicDiscovery)
	}()
	p := principalOf(r)
	s.log.Info("discovery scan started", "targets", len(targets), "timeout", timeout, "user", p.user.Name, "remote", p.address)
	writeJSON(w, http.StatusAccepted, scanStatusResponse{Progress: progressOf(job.Progress())})
	return nil
}

func (s *Server) scanStatus(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireDiscovery(); err != nil {
		return err
	}
	d := s.disc
	d.scanMu.Lock()
	job := d.job
	d.scanMu.Unlock()
	var resp scanStatusResponse
	if job != nil {
		resp.Progress = progressOf(job.Progress())
		resp.Found = len(job.Results())
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// stopScans cancels a running scan; tests use it when they end.
func (s *Server) stopScans() { s.disc.stop() }

func (s *Server) listDiscovered(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireDiscovery(); err != nil {
		return err
	}
	p, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	if p.size == 0 {
		err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
			p.size = pageSizeProperty(st)
			return nil
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, pageOf(s.disc.snapshot(), p))
	return nil
}

// pingResponse answers POST /api/v1/discovery/ping: every discovered
// device, with how many are online.
type pingResponse struct {
	Total  int                `json:"total"`
	Online int                `json:"online"`
	Items  []discoveredDevice `json:"items"`
}

func (s *Server) pingDiscovered(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireDiscovery(); err != nil {
		return err
	}
	devices := s.disc.snapshot()
	var targets []netip.AddrPort
	for _, dev := range devices {
		if !slices.Contains(targets, dev.addr) {
			targets = append(targets, dev.addr)
		}
	}
	var presence map[netip.AddrPort]discovery.Presence
	if len(targets) > 0 {
		var err error
		presence, err = s.cfg.Discovery.Ping(r.Context(), targets, 0)
		if err != nil {
			return err
		}
	}
	now := s.cfg.Now().UTC().Format(time.RFC3339)
	d := s.disc
	d.mu.Lock()
	for _, dev := range d.devices {
		pr, ok := presence[dev.addr]
		if !ok {
			continue
		}
		// The device at that address answers, and it is this one (a PONG
		// that names another device means this one has gone).
		dev.Online = pr.Online && (pr.DeviceID.IsZero() || sameHostID(pr.DeviceID, dev.HostIDs[0]))
		if dev.Online {
			dev.LastSeen = now
		}
	}
	d.mu.Unlock()
	s.hub.raise(topicDiscovery)
	resp := pingResponse{Items: s.disc.snapshot()}
	resp.Total = len(resp.Items)
	for _, dev := range resp.Items {
		if dev.Online {
			resp.Online++
		}
	}
	p := principalOf(r)
	s.log.Info("discovery online check", "devices", resp.Total, "online", resp.Online, "user", p.user.Name, "remote", p.address)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func sameHostID(a discovery.HostID, b hostid.HostID) bool {
	ids := convertHostIDs([]discovery.HostID{a})
	return len(ids) == 1 && ids[0] == b
}

// deviceRequest is the body of POST /api/v1/discovery/wake and
// /api/v1/discovery/onboard: the device to act on.
type deviceRequest struct {
	Device *struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"device"`
}

// wakeResponse answers a wake: the device and where the packet went.
type wakeResponse struct {
	Device  hostid.HostID `json:"device"`
	Targets []string      `json:"targets"`
	// Failed counts the targets the packet could not be sent to.
	Failed int `json:"failed"`
}

// readDevice reads a deviceRequest and returns its device ID.
func readDevice(w http.ResponseWriter, r *http.Request) (hostid.HostID, error) {
	var req deviceRequest
	if err := readJSON(w, r, maxDiscoveryBody, &req); err != nil {
		return hostid.HostID{}, err
	}
	if req.Device == nil {
		return hostid.HostID{}, badRequest("bad_json", `field "device" is required`)
	}
	return hostid.Parse(req.Device.Value, req.Device.Type)
}

func (s *Server) wake(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.WakeConn == nil {
		return fmt.Errorf("%w: Wake-on-LAN is not configured on this node", errNotAvailable)
	}
	id, err := readDevice(w, r)
	if err != nil {
		return err
	}
	if id.Type != hostid.Ethernet {
		return fmt.Errorf("%w: a %s hostid has no MAC address to wake; only ETHERNET hostids can be woken", errNotWakeable, id.Type)
	}
	mac, err := net.ParseMAC(id.Value)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotWakeable, err)
	}
	targets := discovery.Targets(s.cfg.BroadcastTargets(), s.cfg.WakePort)
	resp := wakeResponse{Device: id, Targets: make([]string, 0, len(targets))}
	for _, t := range targets {
		resp.Targets = append(resp.Targets, t.String())
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: no broadcast address to send to", errSendFailed)
	}
	p := principalOf(r)
	if err := discovery.Wake(s.cfg.WakeConn, mac, targets); err != nil {
		if errors.Is(err, discovery.ErrBadMAC) {
			return err
		}
		resp.Failed = 1
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			resp.Failed = len(joined.Unwrap())
		}
		s.log.Warn("magic packet not sent to every target", "mac", id.Value, "failed", resp.Failed, "err", err, "user", p.user.Name, "remote", p.address)
		if resp.Failed >= len(targets) {
			return fmt.Errorf("%w: %v", errSendFailed, err)
		}
	}
	s.log.Info("magic packet sent", "mac", id.Value, "targets", len(targets), "user", p.user.Name, "remote", p.address)
	writeJSON(w, http.StatusAccepted, resp)
	return nil
}
