package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/raft"
	"github.com/tallyhq/tally/raft/clustertls"
	"github.com/tallyhq/tally/transport"
	"github.com/tallyhq/tally/transport/mdns"
)

// Forming with --bootstrap-expect N: nodes on one LAN agree on a cluster
// CA before raft starts, because raft between them needs certificates
// from one CA.
//
// Each forming node serves POST /form over TLS with a throwaway
// certificate on its raft port, and announces _tally-ha._tcp by mDNS with
// its node ID, N, state=forming and the SHA-256 of that certificate. The
// founding nodes are the N forming nodes with the lowest node IDs; the
// lowest of them, the seed, creates the CA and signs the certificate
// request of each other founding node, which it accepts only from the
// address mDNS gave for that node. The others ask the lowest forming node
// they see (so a node that is slower to look still finds the seed after
// the others have formed and stopped announcing), pinning its certificate
// by the announced hash, until the seed answers. Every founding node then
// bootstraps raft with the seed's list of the N founding nodes. Trust
// rests on the LAN while forming, or, with --bootstrap-secret-file, on a
// secret every founding node holds (formauth.go, docs/cluster.md).

// formService is the mDNS service type of cluster peers.
const formService = "_tally-ha._tcp"

// Forming's bounds; formConfig can shorten them.
const (
	formDeadline = 10 * time.Minute
	formRound    = 2 * time.Second
	formSeedWait = 2 * time.Minute
	// formAskTimeout bounds one certificate request to the seed.
	formAskTimeout = 10 * time.Second
	maxFormBody    = 64 << 10
)

// The states a _tally-ha._tcp instance announces.
const (
	peerForming = "forming"
	peerMember  = "member"
)

// Refusals of a forming request; formStatus maps them to HTTP.
var (
	errFormNotReady      = errors.New("this node is not the seed of a cluster being formed (yet)")
	errNotFoundingMember = errors.New("not a founding node of the cluster being formed")
	errWrongAddress      = errors.New("the request does not come from the address the node announced")
	errBadFormRequest    = errors.New("bad forming request")
)

// formConfig is what formCluster needs.
type formConfig struct {
	NodeID string
	// Expect is --bootstrap-expect.
	Expect   int
	Listener net.Listener
	// Advertise is this node's raft address, announced by mDNS.
	Advertise netip.AddrPort
	// Dir is DATA/cluster.
	Dir string
	// Auth proves and checks forming messages with the bootstrap secret;
	// nil without one (formauth.go).
	Auth *formAuth
	Log  *slog.Logger
	// Deadline bounds forming, Round is one mDNS browse, SeedWait is how
	// long the seed waits for the others to fetch their certificates.
	Deadline, Round, SeedWait time.Duration
}

// formingNode is a node seen announcing that it is forming a cluster.
type formingNode struct {
	ID string
	// Addr is its raft address, from its mDNS address and SRV port.
	Addr netip.AddrPort
	// TLS is the SHA-256 (hex) of its forming server's certificate.
	TLS string
}

func (n formingNode) member() raft.Member {
	return raft.Member{ID: n.ID, Address: n.Addr.String(), Voter: true}
}

// formRequest is what a founding node sends the seed, formAnswer what the
// seed answers: the cluster CA, the node's certificate (DER) and the
// founding nodes every one of them bootstraps raft with.
type formRequest struct {
	NodeID string `json:"nodeId"`
	CSR    []byte `json:"csr"`
}

type formAnswer struct {
	CA          []byte        `json:"ca"`
	Certificate []byte        `json:"certificate"`
	Members     []raft.Member `json:"members"`
}

// formCluster forms a cluster of fc.Expect nodes found by mDNS. It
// returns this node's identity, saved in fc.Dir, and the founding nodes
// to bootstrap raft with. fc.Listener stays open for raft.
func formCluster(ctx context.Context, fc formConfig) (*clustertls.Identity, []raft.Member, error) {
	if !fc.Advertise.Addr().IsGlobalUnicast() {
		return nil, nil, fmt.Errorf("--bootstrap-expect finds the other nodes by mDNS on the LAN: bind a LAN address, not %s", fc.Advertise.Addr())
	}
	cert, fingerprint, err := formingCertificate(fc.NodeID, time.Now())
	if err != nil {
		return nil, nil, err
	}
	key, csr, err := nodeKeyAndCSR(fc.NodeID)
	if err != nil {
		return nil, nil, err
	}
	server, err := serveForming(fc.Listener, cert, fc.Auth, fc.Log)
	if err != nil {
		return nil, nil, err
	}
	defer server.stop()
	announcer, err := announceForming(ctx, fc, fingerprint)
	if err != nil {
		return nil, nil, err
	}
	defer announcer.Close()

	fc.Log.Info("forming a cluster: looking for the other nodes by mDNS", "expect", fc.Expect, "service", formService)
	formCtx, cancel := context.WithTimeout(ctx, fc.Deadline)
	defer cancel()
	var forming []formingNode
	var members []string
	var lastErr error
	for formCtx.Err() == nil {
		instances, err := mdns.Browse(formCtx, formService, fc.Round)
		if err != nil && formCtx.Err() == nil {
			return nil, nil, fmt.Errorf("look for the other nodes by mDNS: %w", err)
		}
		if name, _ := announcer.Names(); name != fc.NodeID {
			return nil, nil, fmt.Errorf("another node on this LAN announces node ID %s", fc.NodeID)
		}
		forming, members = formingNodes(instances, fc.Expect, fc.Auth)
		founders := foundingSet(forming, fc.Expect)
		if len(founders) > 0 && founders[0].ID == fc.NodeID {
			return seedCluster(ctx, fc, server, founders)
		}
		if len(forming) == 0 || forming[0].ID == fc.NodeID {
			continue
		}
		ans, err := askSeed(formCtx, forming[0], formRequest{NodeID: fc.NodeID, CSR: csr}, fc.Advertise.Addr(), fc.Auth)
		if err != nil {
			lastErr = err
			fc.Log.Debug("forming: no certificate yet", "asked", forming[0].ID, "err", err)
			continue
		}
		ident, err := acceptAnswer(ans, key, fc)
		if err != nil {
			return nil, nil, fmt.Errorf("the answer of %s: %w", forming[0].ID, err)
		}
		fc.Log.Info("forming: got this node's certificate", "seed", forming[0].ID, "members", len(ans.Members))
		return ident, ans.Members, nil
	}
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("forming a cluster: %w", ctx.Err())
	}
	return nil, nil, formTimeout(fc, forming, members, lastErr)
}

// formTimeout says why forming did not succeed in time.
func formTimeout(fc formConfig, forming []formingNode, members []string, lastErr error) error {
	ids := make([]string, len(forming))
	for i, n := range forming {
		ids[i] = n.ID
	}
	msg := fmt.Sprintf("--bootstrap-expect %d: no cluster formed in %s; forming nodes seen last: %d (%s)",
		fc.Expect, fc.Deadline, len(forming), strings.Join(ids, ", "))
	if founders := foundingSet(forming, fc.Expect); len(founders) > 0 && !slices.ContainsFunc(founders, func(n formingNode) bool { return n.ID == fc.NodeID }) {
		msg += fmt.Sprintf("; this node is not among the %d with the lowest node IDs", fc.Expect)
	}
	if len(members) > 0 {
		msg += fmt.Sprintf("; cluster members answer on this LAN (%s)", strings.Join(members, ", "))
	}
	msg += "; join a cluster with --join HOST:8443 --join-token TOKEN (tallyctl cluster token on a member)"
	if lastErr != nil {
		msg += "; last answer: " + lastErr.Error()
	}
	return errors.New(msg)
}

// seedCluster creates the cluster CA and answers the other founding
// nodes until each has its certificate, or fc.SeedWait has passed.
func seedCluster(ctx context.Context, fc formConfig, server *formingServer, founders []formingNode) (*clustertls.Identity, []raft.Member, error) {
	now := time.Now()
	ca, ident, err := createCluster(fc.NodeID, fc.Dir, now)
	if err != nil {
		return nil, nil, err
	}
	seed := newFormingSeed(ca, founders, fc.NodeID, time.Now)
	server.seed.Store(seed)
	fc.Log.Info("forming: this node is the seed; it created the cluster CA", "members", seed.common.Members)
	wait := time.NewTimer(fc.SeedWait)
	defer wait.Stop()
	select {
	case <-seed.done:
	case <-wait.C:
		fc.Log.Warn("forming: founding nodes did not fetch their certificates; starting without them", "missing", seed.missing())
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("forming a cluster: %w", ctx.Err())
	}
	return ident, seed.common.Members, nil
}

// acceptAnswer checks the seed's answer and saves the identity it makes.
func acceptAnswer(ans formAnswer, key *ecdsa.PrivateKey, fc formConfig) (*clustertls.Identity, error) {
	ident, err := clustertls.NewIdentity(ans.CA, ans.Certificate, key)
	if err != nil {
		return nil, err
	}
	if ident.NodeID != fc.NodeID {
		return nil, fmt.Errorf("a certificate for node %q, not %q", ident.NodeID, fc.NodeID)
	}
	if len(ans.Members) != fc.Expect {
		return nil, fmt.Errorf("%d founding nodes, not %d", len(ans.Members), fc.Expect)
	}
	i := slices.IndexFunc(ans.Members, func(m raft.Member) bool { return m.ID == fc.NodeID })
	if i < 0 {
		return nil, errors.New("the founding nodes do not include this node")
	}
	if a, err := netip.ParseAddrPort(ans.Members[i].Address); err != nil || a != fc.Advertise {
		return nil, fmt.Errorf("the seed knows this node at %s, but it is at %s", ans.Members[i].Address, fc.Advertise)
	}
	return ident, ident.Save(fc.Dir)
}

// formingNodes picks from instances of _tally-ha._tcp the nodes forming a
// cluster of expect nodes, sorted by node ID, and names the nodes that
// announce themselves as cluster members. With a bootstrap secret, a
// forming node counts only when its announcement is proven with it.
func formingNodes(instances []mdns.Instance, expect int, auth *formAuth) (forming []formingNode, members []string) {
	seen := map[string]bool{}
	for _, in := range instances {
		id := in.TXT["node"]
		if clustertls.ValidNodeID(id) != nil || len(in.Addrs) == 0 || in.Port == 0 {
			continue
		}
		switch in.TXT["state"] {
		case peerMember:
			members = append(members, id)
			continue
		case peerForming:
		default:
			continue
		}
		if in.TXT["expect"] != strconv.Itoa(expect) || len(in.TXT["tls"]) != 2*sha256.Size || seen[id] {
			continue
		}
		if !auth.check(in.TXT["auth"], auth.announcement(id, expect, in.TXT["tls"])) {
			continue
		}
		seen[id] = true
		forming = append(forming, formingNode{ID: id, Addr: netip.AddrPortFrom(in.Addrs[0], in.Port), TLS: in.TXT["tls"]})
	}
	slices.SortFunc(forming, func(a, b formingNode) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(members)
	return forming, slices.Compact(members)
}

// foundingSet is the expect forming nodes with the lowest node IDs, the
// first of them the seed, or nil while fewer are seen.
func foundingSet(forming []formingNode, expect int) []formingNode {
	if len(forming) < expect {
		return nil
	}
	return forming[:expect]
}

// peerService is this node's _tally-ha._tcp announcement in state.
func peerService(nodeID string, raftPort uint16, state string, extra map[string]string) mdns.Service {
	txt := map[string]string{"node": nodeID, "state": state}
	maps.Copy(txt, extra)
	return mdns.Service{Type: formService, Port: raftPort, TXT: txt}
}

// memberServices is what a running cluster member announces besides
// _tally._tcp: itself as a member, on its raft port.
func memberServices(nodeID string, cluster *clusterSetup) []mdns.Service {
	if cluster == nil {
		return nil
	}
	a, err := netip.ParseAddrPort(cluster.config.Advertise)
	if err != nil {
		return nil
	}
	return []mdns.Service{peerService(nodeID, a.Port(), peerMember, nil)}
}

// announceForming starts the mDNS responder that announces this node as
// forming, under its node ID, at its raft address.
func announceForming(ctx context.Context, fc formConfig, fingerprint string) (*mdns.Responder, error) {
	r, err := mdns.NewResponder(mdns.Config{
		Instance: fc.NodeID,
		Host:     mdnsHost(fc.NodeID),
		Services: []mdns.Service{peerService(fc.NodeID, fc.Advertise.Port(), peerForming, formingTXT(fc, fingerprint))},
		// Peers take the address as this node's raft address.
		Addrs:  func() []netip.Addr { return []netip.Addr{fc.Advertise.Addr()} },
		Logger: fc.Log.With("part", "mdns"),
	})
	if err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, mdnsStartTimeout)
	defer cancel()
	if err := r.Start(startCtx); err != nil {
		return nil, fmt.Errorf("announce this node by mDNS: %w", err)
	}
	return r, nil
}

// formingTXT is what a forming node announces besides its node ID and
// state: the expectation, its forming certificate's hash and, with a
// bootstrap secret, the proof of both.
func formingTXT(fc formConfig, fingerprint string) map[string]string {
	txt := map[string]string{"expect": strconv.Itoa(fc.Expect), "tls": fingerprint}
	if fc.Auth != nil {
		txt["auth"] = fc.Auth.announcement(fc.NodeID, fc.Expect, fingerprint)
	}
	return txt
}

// formingCertificate makes the throwaway self-signed certificate of the
// forming server and its SHA-256 (hex), which peers pin.
func formingCertificate(nodeID string, now time.Time) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tally forming " + nodeID},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("forming certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

// formingSeed is the seed's side: it signs the certificates of the other
// founding nodes.
type formingSeed struct {
	ca       *clustertls.CA
	founders map[string]formingNode
	now      func() time.Time
	// common is what every answer holds but the node's certificate.
	common formAnswer

	mu      sync.Mutex
	pending map[string]bool // founding nodes without a certificate
	done    chan struct{}   // closed once pending is empty
}

func newFormingSeed(ca *clustertls.CA, founders []formingNode, self string, now func() time.Time) *formingSeed {
	s := &formingSeed{ca: ca, founders: map[string]formingNode{}, now: now, pending: map[string]bool{},
		done: make(chan struct{}), common: formAnswer{CA: ca.CertDER}}
	for _, n := range founders {
		s.common.Members = append(s.common.Members, n.member())
		if n.ID != self {
			s.founders[n.ID], s.pending[n.ID] = n, true
		}
	}
	if len(s.pending) == 0 {
		close(s.done)
	}
	return s
}

// answer signs the certificate request of a founding node that asks from
// the address it announced.
func (s *formingSeed) answer(req formRequest, from netip.Addr) (formAnswer, error) {
	n, ok := s.founders[req.NodeID]
	if !ok {
		return formAnswer{}, fmt.Errorf("%w: %q", errNotFoundingMember, req.NodeID)
	}
	if from.Unmap() != n.Addr.Addr() {
		return formAnswer{}, fmt.Errorf("%w: node %s is at %s, the request came from %s", errWrongAddress, n.ID, n.Addr.Addr(), from)
	}
	cert, err := s.ca.SignNode(req.CSR, n.ID, s.now(), rand.Reader)
	if err != nil {
		return formAnswer{}, err
	}
	ans := s.common
	ans.Certificate = cert
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[n.ID] {
		delete(s.pending, n.ID)
		if len(s.pending) == 0 {
			close(s.done)
		}
	}
	return ans, nil
}

// missing names the founding nodes that have no certificate yet.
func (s *formingSeed) missing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.pending))
}

// formingServer serves POST /form on the raft listener while forming.
type formingServer struct {
	seed   atomic.Pointer[formingSeed]
	auth   *formAuth
	http   *http.Server
	lent   *lentListener
	served chan struct{}
}

// serveForming starts the forming server on ln with cert; auth, when not
// nil, checks requests and proves answers.
func serveForming(ln net.Listener, cert tls.Certificate, auth *formAuth, log *slog.Logger) (*formingServer, error) {
	lent, err := lend(ln)
	if err != nil {
		return nil, err
	}
	s := &formingServer{lent: lent, auth: auth, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /form", s.handle)
	s.http = httpServer(mux, cert, transport.TLSConfig, log.With("part", "forming"))
	go func() {
		defer close(s.served)
		s.http.Serve(tls.NewListener(lent, s.http.TLSConfig))
	}()
	return s, nil
}

// stop stops the server and gives the listener back, open.
func (s *formingServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.http.Shutdown(ctx) != nil {
		s.http.Close()
	}
	<-s.served
	s.lent.giveBack()
}

func (s *formingServer) handle(w http.ResponseWriter, r *http.Request) {
	body, ans, err := s.serve(w, r)
	var out []byte
	if err == nil {
		out, err = json.Marshal(ans)
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status, code := formStatus(err)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": code})
		return
	}
	if s.auth != nil {
		w.Header().Set(formAuthHeader, s.auth.answer(body, out))
	}
	w.Write(out)
}

// serve answers a certificate request; it returns the request's body and
// the answer.
func (s *formingServer) serve(w http.ResponseWriter, r *http.Request) ([]byte, formAnswer, error) {
	seed := s.seed.Load()
	if seed == nil {
		return nil, formAnswer{}, errFormNotReady
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
	if err != nil {
		return nil, formAnswer{}, fmt.Errorf("%w: %w", errBadFormRequest, err)
	}
	if !s.auth.check(r.Header.Get(formAuthHeader), s.auth.request(body)) {
		return nil, formAnswer{}, errFormAuth
	}
	var req formRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, formAnswer{}, fmt.Errorf("%w: %w", errBadFormRequest, err)
	}
	from, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, formAnswer{}, fmt.Errorf("%w: %w", errWrongAddress, err)
	}
	ans, err := seed.answer(req, from.Addr())
	return body, ans, err
}

// formStatus maps a forming refusal to its HTTP status and code.
func formStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errFormNotReady):
		return http.StatusServiceUnavailable, "not_ready"
	case errors.Is(err, errNotFoundingMember):
		return http.StatusForbidden, "not_founding_member"
	case errors.Is(err, errWrongAddress):
		return http.StatusForbidden, "wrong_address"
	case errors.Is(err, errFormAuth):
		return http.StatusForbidden, "bad_auth"
	case errors.Is(err, errBadFormRequest), errors.Is(err, clustertls.ErrBadCSR):
		return http.StatusBadRequest, "bad_request"
	}
	return http.StatusInternalServerError, "internal"
}

// askSeed sends req to the forming server of seed, from local, checking
// the server's certificate against the hash seed announced and, with a
// bootstrap secret (auth), proving the request and checking the answer.
func askSeed(ctx context.Context, seed formingNode, req formRequest, local netip.Addr, auth *formAuth) (formAnswer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return formAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, formAskTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+seed.Addr.String()+"/form", bytes.NewReader(body))
	if err != nil {
		return formAnswer{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	if auth != nil {
		hreq.Header.Set(formAuthHeader, auth.request(body))
	}
	// The request leaves from the announced address: the seed checks it.
	dialer := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	client := &http.Client{Transport: &http.Transport{
		DialContext:     dialer.DialContext,
		TLSClientConfig: pinnedTLS(seed.TLS),
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(hreq)
	if err != nil {
		return formAnswer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFormBody))
	if err != nil {
		return formAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var refusal struct{ Error, Code string }
		json.Unmarshal(data, &refusal)
		return formAnswer{}, fmt.Errorf("%s refused (%s): %s", seed.ID, refusal.Code, refusal.Error)
	}
	if !auth.check(resp.Header.Get(formAuthHeader), auth.answer(body, data)) {
		return formAnswer{}, fmt.Errorf("the answer of %s is not proven with the bootstrap secret", seed.ID)
	}
	var ans formAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return formAnswer{}, fmt.Errorf("unreadable answer from %s: %w", seed.ID, err)
	}
	return ans, nil
}

// pinnedTLS accepts only the server certificate whose SHA-256 (hex) is
// fingerprint: there is no CA to check it against yet.
func pinnedTLS(fingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			sum := sha256.Sum256(raw[0])
			if hex.EncodeToString(sum[:]) != fingerprint {
				return errors.New("the server's certificate is not the one it announced")
			}
			return nil
		},
	}
}

// lentListener lends the raft listener to the forming server: its Close
// stops Accept without closing the listener, which raft takes over.
type lentListener struct {
	net.Listener
	deadline interface{ SetDeadline(time.Time) error }
	closed   atomic.Bool
}

var _ net.Listener = (*lentListener)(nil)

func lend(ln net.Listener) (*lentListener, error) {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return nil, fmt.Errorf("the raft listener %T cannot be lent", ln)
	}
	return &lentListener{Listener: ln, deadline: d}, nil
}

func (l *lentListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if l.closed.Load() {
		if c != nil {
			c.Close()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

// Close wakes a waiting Accept with a deadline in the past.
func (l *lentListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	return l.deadline.SetDeadline(time.Unix(1, 0))
}

// giveBack clears the deadline once the server no longer accepts.
func (l *lentListener) giveBack() {
	l.deadline.SetDeadline(time.Time{})
}
