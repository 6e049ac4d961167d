package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/deviceproto"
	"github.com/tallyhq/tally/transport/discovery"
	"github.com/tallyhq/tally/transport/mdns"
)

// serverDiscover is the --server value that finds the server on the LAN.
const serverDiscover = "discover"

// mdnsService is the DNS-SD service type Tally announces.
const mdnsService = "_tally._tcp"

// trustFileName is the file in $HOME/.tally-agent that holds the licensing
// ID fingerprint pinned on first use.
const trustFileName = "server.fingerprint"

// targetsFlag collects repeated --target HOST[:PORT] values.
type targetsFlag []string

func (t *targetsFlag) String() string { return strings.Join(*t, ",") }

func (t *targetsFlag) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty --target")
	}
	*t = append(*t, v)
	return nil
}

// discovered is the outcome of one discovery: the verified offers, leader
// first, all of one licensing ID.
type discovered struct {
	Offers      []discovery.Offer
	Fingerprint discovery.Fingerprint
	// FirstUse is true when the fingerprint was pinned by this run.
	FirstUse bool
	// PinnedBy says where the pin came from: "--identity", the trust file,
	// or "" on first use.
	PinnedBy string
}

// urls returns every endpoint in the order to try them: the first offer's
// order (its leader, then the answering node, then the others), then any
// the other offers add.
func (d discovered) urls() []string {
	var out []string
	for _, o := range d.Offers {
		for _, u := range o.URLs() {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// trustFilePath is $HOME/.tally-agent/server.fingerprint.
func trustFilePath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the pinned server fingerprint: %w", err)
	}
	return filepath.Join(home, ".tally-agent", trustFileName), nil
}

// readTrustFile returns the pinned fingerprint, or the zero one when the
// file does not exist.
func readTrustFile(path string) (discovery.Fingerprint, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return discovery.Fingerprint{}, nil
	}
	if err != nil {
		return discovery.Fingerprint{}, fmt.Errorf("read the pinned server fingerprint: %w", err)
	}
	fp, err := discovery.ParseFingerprint(strings.TrimSpace(string(data)))
	if err != nil || fp.IsZero() {
		return discovery.Fingerprint{}, fmt.Errorf("%s does not hold a fingerprint; delete it to pin the server again", path)
	}
	return fp, nil
}

// writeTrustFile saves fp to path (mode 0600, directory 0700). If another
// run saved one meanwhile, that one must be fp.
func writeTrustFile(path string, fp discovery.Fingerprint) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the server fingerprint: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		saved, rerr := readTrustFile(path)
		if rerr != nil {
			return rerr
		}
		if saved != fp {
			return fmt.Errorf("server licensing ID %s is not the one pinned in %s meanwhile, %s", fp, path, saved)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("save the server fingerprint: %w", err)
	}
	_, err = f.WriteString(fp.String() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("save the server fingerprint: %w", err)
	}
	return nil
}

// discoveryTargets returns where DISCOVER goes: 255.255.255.255, each
// interface's directed broadcast and each --target, on port unless a
// target names its own.
func discoveryTargets(ctx context.Context, targets []string, port uint16) ([]netip.AddrPort, error) {
	addrs := []netip.Addr{discovery.LimitedBroadcast()}
	if ifaces, err := discovery.LocalInterfaces(); err == nil {
		addrs = discovery.BroadcastAddrs(ifaces)
	}
	out := discovery.Targets(addrs, port)
	for _, t := range targets {
		host, p := t, port
		if h, ps, err := net.SplitHostPort(t); err == nil {
			n, err := strconv.ParseUint(ps, 10, 16)
			if err != nil || n == 0 {
				return nil, usagef("--target %q: bad port", t)
			}
			host, p = h, uint16(n)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Unmap().Is4() {
				return nil, usagef("--target %q: discovery speaks IPv4 only", t)
			}
			out = append(out, netip.AddrPortFrom(a.Unmap(), p))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("--target %q: no IPv4 address: %v", t, err)
		}
		for _, a := range ips {
			out = append(out, netip.AddrPortFrom(a.Unmap(), p))
		}
	}
	return out, nil
}

// hostIDHint is the device's first hostid in discovery form; the zero
// HostID when it cannot be put in canonical form.
func hostIDHint(o options) discovery.HostID {
	h, err := deviceHostID(o)
	if err != nil {
		return discovery.HostID{}
	}
	return h
}

// deviceHostID is the --hostid flag's hostid (the host name by default) in
// canonical form.
func deviceHostID(o options) (discovery.HostID, error) {
	value := o.hostid
	if value == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return discovery.HostID{}, fmt.Errorf("no --hostid given and the host name is unknown")
		}
		value = h
	}
	h, err := hostid.Parse(value, strings.ToUpper(o.hostidType))
	if err != nil {
		return discovery.HostID{}, usagef("--hostid %q --hostid-type %s: %v", value, o.hostidType, err)
	}
	return discovery.HostID{Type: discovery.HostIDType(h.Type), Value: h.Value}, nil
}

// discoverServers broadcasts DISCOVER and returns the verified offers of
// one licensing ID: the one --identity pins, else the one pinned in the
// trust file, else (first use) the only one that answered, which the
// caller pins with pinFirstUse once it trusts it.
func discoverServers(ctx context.Context, o options, targets []string, port uint16, timeout time.Duration) (discovered, error) {
	var d discovered
	var pin discovery.Fingerprint
	trustPath, trustErr := trustFilePath()
	switch {
	case o.identity != "":
		fp, err := discovery.ParseFingerprint(o.identity)
		if err != nil || fp.IsZero() {
			return d, usagef("--identity %q is not a SHA-256 fingerprint", o.identity)
		}
		pin, d.PinnedBy = fp, "--identity"
	case trustErr != nil:
		return d, trustErr
	default:
		fp, err := readTrustFile(trustPath)
		if err != nil {
			return d, err
		}
		if !fp.IsZero() {
			pin, d.PinnedBy = fp, trustPath
		}
	}
	dst, err := discoveryTargets(ctx, targets, port)
	if err != nil {
		return d, err
	}
	conn, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		return d, fmt.Errorf("discover: %w", err)
	}
	defer conn.Close()
	cfg := discovery.ClientConfig{Conn: conn, Targets: dst, HostIDHint: hostIDHint(o), Timeout: timeout}
	if !pin.IsZero() {
		cfg.PinnedFingerprint = pin.String()
	}
	var (
		mu       sync.Mutex
		pinErr   error
		pinErrAt netip.AddrPort
	)
	cfg.OnReject = func(from netip.AddrPort, err error) {
		if errors.Is(err, discovery.ErrFingerprint) {
			mu.Lock()
			pinErr, pinErrAt = err, from
			mu.Unlock()
		}
	}
	offers, err := discovery.Discover(ctx, cfg)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if pinErr != nil && !pin.IsZero() {
			return d, fmt.Errorf("refused the server at %s: %v (pinned by %s)", pinErrAt, pinErr, d.PinnedBy)
		}
		if errors.Is(err, discovery.ErrNoOffer) {
			return d, fmt.Errorf("no Tally server answered on UDP port %d: %w", port, err)
		}
		return d, err
	}
	d.Offers = offers
	if !pin.IsZero() {
		d.Fingerprint = pin
		return d, nil
	}
	var fps []string
	for _, of := range offers {
		if s := of.Fingerprint.String(); !slices.Contains(fps, s) {
			fps = append(fps, s)
		}
	}
	if len(fps) > 1 {
		return d, fmt.Errorf("servers of %d licensing IDs answered (%s); choose one with --identity FP", len(fps), strings.Join(fps, ", "))
	}
	d.Fingerprint, d.FirstUse = offers[0].Fingerprint, true
	return d, nil
}

// pinFirstUse saves the fingerprint of a first use to the trust file and
// says so on stderr; it does nothing when the fingerprint was pinned
// already.
func pinFirstUse(d *discovered, stderr io.Writer) error {
	if !d.FirstUse {
		return nil
	}
	trustPath, err := trustFilePath()
	if err != nil {
		return err
	}
	if err := writeTrustFile(trustPath, d.Fingerprint); err != nil {
		return err
	}
	d.PinnedBy = trustPath
	fmt.Fprintf(stderr, "tally-agent: first use: pinned the server's licensing ID %s in %s; from now on only this server is trusted (delete the file to trust another)\n",
		d.Fingerprint, trustPath)
	return nil
}

// connect dials the device protocol: at --server, or with --server
// discover at the discovered endpoints, the leader's first and then the
// others in order, pinning the licensing ID the offers were verified with.
// A licensing ID met for the first time is pinned once a connection
// with it succeeded.
func connect(ctx context.Context, o options, cfg deviceproto.ClientConfig, stderr io.Writer) (*deviceproto.Client, error) {
	urls, identity, commit, err := serverURLs(ctx, o, stderr)
	if err != nil {
		return nil, err
	}
	if identity != "" {
		cfg.VerifyFingerprint = identity
	}
	return dialFirst(ctx, urls, cfg, commit)
}

// dialFirst dials the URLs in order and returns the first connection, after
// commit has accepted it.
func dialFirst(ctx context.Context, urls []string, cfg deviceproto.ClientConfig, commit func() error) (*deviceproto.Client, error) {
	var errs []string
	for _, u := range urls {
		c, err := deviceproto.Dial(ctx, u, cfg)
		if err == nil {
			if err := commit(); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
		if len(urls) == 1 {
			return nil, err
		}
		errs = append(errs, fmt.Sprintf("%s: %s", u, oneLine(err.Error())))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no discovered endpoint accepted the connection: %s", strings.Join(errs, "; "))
}

// serverURLs returns the device endpoints to try, with --server discover
// the licensing ID fingerprint to pin, and commit, to be called once a
// connection succeeded, which saves a fingerprint met for the first time.
func serverURLs(ctx context.Context, o options, stderr io.Writer) (urls []string, identity string, commit func() error, err error) {
	commit = func() error { return nil }
	if o.server != serverDiscover {
		u, err := deviceURL(o.server)
		return []string{u}, "", commit, err
	}
	d, err := discoverServers(ctx, o, o.targets, o.discoveryPort, o.discoveryTimeout)
	if err != nil {
		return nil, "", nil, err
	}
	for _, raw := range d.urls() {
		u, err := deviceURL(raw)
		if err == nil {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, "", nil, errors.New("the discovered servers offer no usable endpoint")
	}
	return urls, d.Fingerprint.String(), func() error { return pinFirstUse(&d, stderr) }, nil
}

// offerJSON is how discover --json prints an offer.
type offerJSON struct {
	Node        string         `json:"node"`
	Leader      string         `json:"leader,omitempty"`
	IsLeader    bool           `json:"isLeader"`
	Cluster     string         `json:"cluster,omitempty"`
	From        string         `json:"from"`
	Fingerprint string         `json:"fingerprint"`
	Endpoints   []endpointJSON `json:"endpoints"`
	URLs        []string       `json:"urls"`
	Timestamp   time.Time      `json:"timestamp"`
}

type endpointJSON struct {
	Node string `json:"node"`
	URL  string `json:"url"`
}

type instanceJSON struct {
	Name        string   `json:"name"`
	Host        string   `json:"host"`
	Port        uint16   `json:"port"`
	Addrs       []string `json:"addrs"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// Pinned says the TXT fingerprint is the pinned licensing ID; it is
	// not verified (mDNS is not signed).
	Pinned bool   `json:"pinned"`
	WSPath string `json:"wsPath,omitempty"`
}

type discoverJSON struct {
	Fingerprint string         `json:"fingerprint,omitempty"`
	FirstUse    bool           `json:"firstUse"`
	PinnedBy    string         `json:"pinnedBy,omitempty"`
	Offers      []offerJSON    `json:"offers"`
	URLs        []string       `json:"urls"`
	MDNS        []instanceJSON `json:"mdns,omitempty"`
	Error       string         `json:"error,omitempty"`
}

// runDiscover is `tally-agent discover`.
func runDiscover(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", o.discoveryTimeout, "how long to listen for offers")
	withMDNS := fs.Bool("mdns", false, "also browse "+mdnsService+" over mDNS")
	targets := targetsFlag(slices.Clone(o.targets))
	fs.Var(&targets, "target", "also send DISCOVER to HOST[:PORT] (repeatable)")
	port := fs.Uint("discovery-port", uint(o.discoveryPort), "UDP port of the servers")
	if err := fs.Parse(args); err != nil {
		return usagef("discover: %s", err)
	}
	if fs.NArg() > 0 {
		return usagef("discover takes flags only, not %q", fs.Arg(0))
	}
	if *timeout <= 0 || *port == 0 || *port > 65535 {
		return usagef("discover needs a positive --timeout and a --discovery-port from 1 to 65535")
	}

	var (
		instances []mdns.Instance
		mdnsErr   error
		wg        sync.WaitGroup
	)
	if *withMDNS {
		wg.Add(1)
		go func() {
			defer wg.Done()
			instances, mdnsErr = mdns.Browse(ctx, mdnsService, *timeout)
		}()
	}
	d, err := discoverServers(ctx, o, targets, uint16(*port), *timeout)
	if err == nil {
		err = pinFirstUse(&d, stderr)
	}
	wg.Wait()
	if !*withMDNS {
		if err != nil {
			return err
		}
		return printDiscovered(stdout, d, nil, o.json)
	}
	if mdnsErr != nil {
		fmt.Fprintf(stderr, "tally-agent: mdns: %s\n", oneLine(mdnsErr.Error()))
	}
	if err != nil && len(instances) == 0 {
		return err
	}
	if err != nil {
		// mDNS found servers but none answered a verified OFFER: show
		// what mDNS found and still fail.
		if perr := printDiscovered(stdout, d, instances, o.json); perr != nil {
			return perr
		}
		return err
	}
	return printDiscovered(stdout, d, instances, o.json)
}

func printDiscovered(w io.Writer, d discovered, instances []mdns.Instance, asJSON bool) error {
	if asJSON {
		out := discoverJSON{FirstUse: d.FirstUse, PinnedBy: d.PinnedBy, Offers: []offerJSON{}, URLs: d.urls()}
		if !d.Fingerprint.IsZero() {
			out.Fingerprint = d.Fingerprint.String()
		}
		if out.URLs == nil {
			out.URLs = []string{}
		}
		for _, of := range d.Offers {
			oj := offerJSON{Node: of.NodeID, Leader: of.Leader, IsLeader: of.IsLeader(), Cluster: of.Cluster,
				From: of.From.String(), Fingerprint: of.Fingerprint.String(), URLs: of.URLs(), Timestamp: of.Timestamp}
			for _, e := range of.Endpoints {
				oj.Endpoints = append(oj.Endpoints, endpointJSON{Node: e.NodeID, URL: e.URL})
			}
			out.Offers = append(out.Offers, oj)
		}
		for _, in := range instances {
			out.MDNS = append(out.MDNS, instanceToJSON(in, d.Fingerprint))
		}
		return writeJSON(w, out)
	}
	for i, of := range d.Offers {
		if i > 0 {
			fmt.Fprintln(w)
		}
		role := ""
		if of.IsLeader() {
			role = " (leader)"
		}
		fmt.Fprintf(w, "node:         %s%s\n", of.NodeID, role)
		if of.Cluster != "" {
			fmt.Fprintf(w, "cluster:      %s\n", of.Cluster)
		}
		if of.Leader != "" && !of.IsLeader() {
			fmt.Fprintf(w, "leader:       %s\n", of.Leader)
		}
		fmt.Fprintf(w, "from:         %s\n", of.From)
		fmt.Fprintf(w, "fingerprint:  %s\n", of.Fingerprint)
		for j, u := range of.URLs() {
			label := "endpoints:"
			if j > 0 {
				label = ""
			}
			node := ""
			for _, e := range of.Endpoints {
				if e.URL == u {
					node = e.NodeID
					break
				}
			}
			if node != "" && node == of.Leader {
				node += ", leader"
			}
			fmt.Fprintf(w, "%-13s %s (%s)\n", label, u, node)
		}
	}
	if len(instances) > 0 {
		if len(d.Offers) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "mDNS "+mdnsService+" (fingerprints not verified):")
		for _, in := range instances {
			j := instanceToJSON(in, d.Fingerprint)
			mark := ""
			if j.Pinned {
				mark = " (pinned)"
			}
			fmt.Fprintf(w, "  %s  %s:%d  %s  fp=%s%s\n", in.Name, strings.TrimSuffix(in.Host, "."), in.Port,
				strings.Join(j.Addrs, ","), j.Fingerprint, mark)
		}
	}
	return nil
}

func instanceToJSON(in mdns.Instance, pinned discovery.Fingerprint) instanceJSON {
	j := instanceJSON{Name: in.Name, Host: in.Host, Port: in.Port, Addrs: []string{}, WSPath: in.TXT["ws"]}
	for _, a := range in.Addrs {
		j.Addrs = append(j.Addrs, a.String())
	}
	if fp, err := discovery.ParseFingerprint(in.TXT["fp"]); err == nil && !fp.IsZero() {
		j.Fingerprint = fp.String()
		j.Pinned = !pinned.IsZero() && fp == pinned
	} else {
		j.Fingerprint = in.TXT["fp"]
	}
	return j
}
