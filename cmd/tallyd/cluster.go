package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/atomicfile"
	"github.com/tallyhq/tally/raft"
	"github.com/tallyhq/tally/raft/clustertls"
)

// A node runs as a cluster member unless it is a --dev node without
// cluster flags. Its cluster files live in DATA/cluster: the node's
// certificate and key from the cluster CA (clustertls.Identity), and on
// the node that created the cluster the CA itself, which it puts into the
// replicated state so that every member can admit new nodes.
//
//   - A member (the identity exists) starts and rejoins on its own.
//   - With --join HOST:8443 --join-token T a new node asks HOST to admit it,
//     saves the certificate it gets and starts as a member to be added.
//   - With --bootstrap-expect N (N > 1) the node forms a cluster with the
//     other nodes it finds by mDNS on the LAN (form.go).
//   - Otherwise the node creates the cluster CA and bootstraps a cluster of
//     itself, which others can then join.

const (
	clusterDir   = "cluster"
	caCertFile   = "ca-cert.pem"
	caKeyFile    = "ca-key.pem"
	joinTimeout  = 30 * time.Second
	clusterLabel = "tally"
)

// clusterSetup is what the store needs to run as a member.
type clusterSetup struct {
	config *raft.ClusterConfig
	// how says how this start came to be a member, for the log.
	how string
	// caPEM holds the CA this node created, to be put into the state.
	caCert, caKey []byte
}

// clusterMode says whether cfg runs a networked cluster member.
func clusterMode(cfg config) bool {
	return !cfg.Dev || cfg.Join != "" || cfg.BootstrapExpect > 0 || cfg.raftPortGiven
}

// prepareCluster readies the node's cluster identity and its raft
// listener before the store opens.
func prepareCluster(ctx context.Context, cfg config, now time.Time, log *slog.Logger) (*clusterSetup, error) {
	dir := filepath.Join(cfg.DataDir, clusterDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	ident, err := clustertls.LoadIdentity(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster identity in %s: %w", dir, err)
	}
	if err == nil && ident.NodeID != cfg.NodeID {
		return nil, fmt.Errorf("the cluster certificate in %s is for node %q, not %q", dir, ident.NodeID, cfg.NodeID)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.RaftPort)))
	if err != nil {
		return nil, fmt.Errorf("raft port: %w", err)
	}
	advertise := net.JoinHostPort(advertiseIP(cfg.Bind), portOf(ln))
	setup := &clusterSetup{}
	fail := func(err error) (*clusterSetup, error) {
		ln.Close()
		return nil, err
	}
	var bootstrap []raft.Member
	switch {
	case ident != nil:
		setup.how = "member"
		if cfg.Join != "" {
			setup.how = "member (already joined; --join is not needed any more)"
		}
	case cfg.Join != "":
		if ident, err = joinCluster(ctx, cfg.Join, cfg.JoinToken, cfg.NodeID, advertise, dir); err != nil {
			return fail(err)
		}
		setup.how = "joined through " + cfg.Join
	case cfg.BootstrapExpect > 1:
		advertiseAt, err := netip.ParseAddrPort(advertise)
		if err != nil {
			return fail(fmt.Errorf("raft address %s: %w", advertise, err))
		}
		var auth *formAuth
		if cfg.BootstrapSecretFile != "" {
			if auth, err = readBootstrapSecret(cfg.BootstrapSecretFile); err != nil {
				return fail(err)
			}
		} else {
			log.Warn("forming a cluster without --bootstrap-secret-file: any host on this LAN could take part")
		}
		ident, bootstrap, err = formCluster(ctx, formConfig{
			NodeID: cfg.NodeID, Expect: cfg.BootstrapExpect, Listener: ln, Advertise: advertiseAt, Dir: dir, Log: log,
			Deadline: formDeadline, Round: formRound, SeedWait: formSeedWait, Auth: auth,
		})
		if err != nil {
			return fail(err)
		}
		setup.how = fmt.Sprintf("formed with %d nodes by mDNS", cfg.BootstrapExpect)
	default:
		// --bootstrap-expect 1 is this node alone: a new cluster.
		if _, ident, err = createCluster(cfg.NodeID, dir, now); err != nil {
			return fail(err)
		}
		setup.how = "new cluster"
		bootstrap = []raft.Member{{ID: cfg.NodeID, Address: advertise, Voter: true}}
	}
	// The CA files exist on the node that created the cluster; the state
	// gets the CA from it (again after a crash before it was applied).
	setup.caCert, _ = os.ReadFile(filepath.Join(dir, caCertFile))
	setup.caKey, _ = os.ReadFile(filepath.Join(dir, caKeyFile))
	setup.config = &raft.ClusterConfig{
		Listener: ln, Advertise: advertise, ServerTLS: ident.ServerTLS(), ClientTLS: ident.ClientTLS(), Bootstrap: bootstrap,
	}
	return setup, nil
}

// createCluster makes the cluster CA and this node's certificate from it.
func createCluster(nodeID, dir string, now time.Time) (*clustertls.CA, *clustertls.Identity, error) {
	ca, err := clustertls.NewCA(clusterLabel, now, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, caKeyFile), keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, caCertFile), certPEM, 0o600); err != nil {
		return nil, nil, err
	}
	key, csr, err := nodeKeyAndCSR(nodeID)
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.SignNode(csr, nodeID, now, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ident, err := clustertls.NewIdentity(ca.CertDER, cert, key)
	if err != nil {
		return nil, nil, err
	}
	return ca, ident, ident.Save(dir)
}

// nodeKeyAndCSR makes the node's key and its certificate request.
func nodeKeyAndCSR(nodeID string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := clustertls.NewNodeKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := clustertls.NodeCSR(key, nodeID, core.Level, rand.Reader)
	return key, csr, err
}

// joinCluster asks the member at server to admit this node with the join
// token, and saves the certificate it answers with.
func joinCluster(ctx context.Context, server, tokenText, nodeID, advertise, dir string) (*clustertls.Identity, error) {
	if tokenText == "" {
		return nil, errors.New("--join needs --join-token: make one on a member with tallyctl cluster token")
	}
	token, err := clustertls.ParseJoinToken(tokenText)
	if err != nil {
		return nil, fmt.Errorf("--join-token: %w", err)
	}
	key, csr, err := nodeKeyAndCSR(nodeID)
	if err != nil {
		return nil, err
	}
	request, err := json.Marshal(raft.JoinRequest{Token: token.ID, NodeID: nodeID, Address: advertise, CSR: csr})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string][]byte{
		"message": request, "proof": clustertls.JoinProof(token.Verifier(), clustertls.JoinRequestContext, request),
	})
	if err != nil {
		return nil, err
	}
	url := "https://" + server + "/api/v1/cluster/join"
	if !strings.Contains(server, ":") {
		url = "https://" + net.JoinHostPort(server, "8443") + "/api/v1/cluster/join"
	}
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("--join %s: %w", server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	// The member's HTTPS certificate cannot be checked yet: the answer's
	// proof, keyed with the join token, is what proves the member.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 2*raft.MaxJoinMessage))
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", server, err)
	}
	if resp.StatusCode != http.StatusOK {
		var apiErr struct{ Error, Code string }
		json.Unmarshal(data, &apiErr)
		return nil, fmt.Errorf("join %s refused (%s): %s", server, apiErr.Code, apiErr.Error)
	}
	var answer struct{ Message, Proof []byte }
	if err := json.Unmarshal(data, &answer); err != nil {
		return nil, fmt.Errorf("join %s: unreadable answer: %w", server, err)
	}
	jr, err := raft.CheckJoinResponse(token, request, answer.Message, answer.Proof)
	if err != nil {
		return nil, err
	}
	ident, err := clustertls.NewIdentity(jr.CA, jr.Certificate, key)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", server, err)
	}
	return ident, ident.Save(dir)
}

// advertiseIP is the address peers reach this node at: the bound IP, or
// when bound to every address the first non-loopback IPv4 address.
func advertiseIP(bind string) string {
	ip := net.ParseIP(bind)
	if ip != nil && !ip.IsUnspecified() {
		return bind
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// installClusterCA puts the CA this node created into the state, once.
func installClusterCA(ctx context.Context, store core.Store, setup *clusterSetup, log *slog.Logger) error {
	if len(setup.caCert) == 0 || len(setup.caKey) == 0 {
		return nil
	}
	_, err := store.Apply(ctx, &core.SetClusterCA{CertPEM: setup.caCert, KeyPEM: setup.caKey})
	if errors.Is(err, core.ErrClusterCAExists) {
		// This node's data directory holds a CA from before it joined
		// another cluster's state (a restored backup): the state's wins.
		log.Warn("the cluster CA in the data directory is not the cluster's; it is not used", "err", err)
		return nil
	}
	return err
}
