package raft

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/strictjson"
	"github.com/tallyhq/tally/raft/clustertls"
)

// Joining a cluster (DESIGN.md). A new node makes its key and sends a
// JoinRequest to any member's API; the request is proven with the join
// token's verifier, so the token's secret never travels. The member checks
// the proof, spends the token (core.UseJoinToken: one node per token, ever),
// signs the node's certificate with the cluster CA from the replicated
// state, and answers a JoinResponse proven the same way and bound to the
// request. It then adds the node as a voter in the background, retrying
// until the node, which starts its raft listener once it has its
// certificate, is reachable.

// MaxJoinMessage bounds a join request or response.
const MaxJoinMessage = 32 << 10

// addVoterPatience bounds how long a member keeps trying to add a node it
// admitted.
const addVoterPatience = 2 * time.Minute

// JoinRequest is what a joining node sends.
type JoinRequest struct {
	// Token is the join token's ID.
	Token string `json:"token"`
	// NodeID and Address name the node and where peers reach its raft port.
	NodeID  string `json:"nodeId"`
	Address string `json:"address"`
	// CSR is the DER certificate request for the node's key.
	CSR []byte `json:"csr"`
}

// JoinResponse is what an admitting member answers.
type JoinResponse struct {
	// Request is the SHA-256 of the request bytes it answers.
	Request []byte `json:"request"`
	// CA and Certificate are DER: the cluster CA and the node's certificate.
	CA          []byte   `json:"ca"`
	Certificate []byte   `json:"certificate"`
	Members     []Member `json:"members"`
}

// ErrJoin says a join request or response was refused.
var ErrJoin = errors.New("join refused")

// Admit implements core.Cluster: it answers a join request.
func (n *Node) Admit(ctx context.Context, request, proof []byte, remote string) ([]byte, []byte, error) {
	// A malformed request is refused as such (core.ErrInvalidJoinToken).
	bad := func(err error) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("%w: %w: %w", ErrJoin, core.ErrInvalidJoinToken, err)
	}
	if len(request) > MaxJoinMessage {
		return bad(fmt.Errorf("request of %d bytes", len(request)))
	}
	var req JoinRequest
	if err := strictjson.Unmarshal(request, &req); err != nil {
		return bad(err)
	}
	if err := clustertls.ValidNodeID(req.NodeID); err != nil {
		return bad(err)
	}
	if err := checkPeerAddress(req.Address); err != nil {
		return bad(err)
	}
	var verifier, caCert, caKey []byte
	var stateLevel int
	err := n.Read(ctx, func(s *core.State) error {
		stateLevel = s.Level()
		v, ok := s.JoinTokenVerifier(req.Token)
		if !ok {
			return fmt.Errorf("%w: %w", ErrJoin, core.ErrUnknownJoinToken)
		}
		verifier = v
		var hasCA bool
		caCert, caKey, hasCA = s.ClusterCA()
		if !hasCA {
			return fmt.Errorf("%w: the cluster has no CA", ErrJoin)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !clustertls.CheckJoinProof(verifier, clustertls.JoinRequestContext, request, proof) {
		// The same answer as an unknown token: nothing to learn from it.
		return nil, nil, fmt.Errorf("%w: %w", ErrJoin, core.ErrUnknownJoinToken)
	}
	// A node whose release is older than the state would apply the log
	// differently from the others. Refused before the token is spent, so
	// that it admits the node once upgraded.
	level, err := clustertls.CSRLevel(req.CSR)
	if err != nil {
		return bad(err)
	}
	if level < stateLevel {
		return nil, nil, fmt.Errorf("%w: %w: node %s runs a release of state level %d and the cluster's state is at level %d: "+
			"install the cluster's release on the node, then join it with the same token", ErrJoin, core.ErrJoinLevel, req.NodeID, level, stateLevel)
	}
	ca, err := clustertls.ParseCA(caCert, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	cert, err := ca.SignNode(req.CSR, req.NodeID, n.cfg.Now(), n.cfg.Random)
	if err != nil {
		return bad(err)
	}
	if _, err := n.Apply(ctx, &core.UseJoinToken{ID: req.Token, Node: req.NodeID}); err != nil {
		return nil, nil, err
	}
	members, err := n.Members()
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(request)
	resp, err := json.Marshal(JoinResponse{Request: sum[:], CA: ca.CertDER, Certificate: cert, Members: members})
	if err != nil {
		return nil, nil, err
	}
	n.log.Info("node admitted", "node", req.NodeID, "address", req.Address, "token", req.Token, "remote", remote)
	n.wg.Add(1)
	go n.addAdmitted(req.NodeID, req.Address)
	return resp, clustertls.JoinProof(verifier, clustertls.JoinResponseContext, resp), nil
}

// addAdmitted adds an admitted node as a voter, retrying until it is
// reachable or addVoterPatience has passed.
func (n *Node) addAdmitted(id, address string) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), addVoterPatience)
	defer cancel()
	go func() {
		select {
		case <-n.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		attempt, stop := context.WithTimeout(ctx, 10*time.Second)
		err := n.AddVoter(attempt, id, address)
		stop()
		if err == nil {
			n.log.Info("node added as a voter", "node", id, "address", address)
			n.recordMemberChange(&core.MemberChanged{Change: core.MemberAdded, Node: id, Address: address})
			return
		}
		select {
		case <-ctx.Done():
			n.log.Warn("admitted node not added", "node", id, "address", address, "err", err)
			return
		case <-time.After(time.Second):
		}
	}
}

// CheckJoinResponse checks an admitting member's answer to request: its
// proof with the token's verifier and that it answers this request. It
// returns the response.
func CheckJoinResponse(token clustertls.JoinToken, request, response, proof []byte) (JoinResponse, error) {
	var resp JoinResponse
	if len(response) > MaxJoinMessage {
		return resp, fmt.Errorf("%w: response of %d bytes", ErrJoin, len(response))
	}
	if !clustertls.CheckJoinProof(token.Verifier(), clustertls.JoinResponseContext, response, proof) {
		return resp, fmt.Errorf("%w: the answer is not proven with the join token: a server that does not know it answered", ErrJoin)
	}
	if err := strictjson.Unmarshal(response, &resp); err != nil {
		return resp, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	if sum := sha256.Sum256(request); !bytes.Equal(sum[:], resp.Request) {
		return resp, fmt.Errorf("%w: the answer is for another request", ErrJoin)
	}
	return resp, nil
}

// checkPeerAddress accepts host:port with an IP peers can dial.
func checkPeerAddress(address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("address %q: %w", address, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() || port == "0" || port == "" {
		return fmt.Errorf("address %q is not an IP:port peers can reach", address)
	}
	return nil
}

// NewJoinToken implements core.Cluster: a new join token, and what the
// replicated state keeps of it.
func (n *Node) NewJoinToken() (token, id string, verifier []byte, err error) {
	t, err := clustertls.NewJoinToken(n.cfg.Random)
	if err != nil {
		return "", "", nil, err
	}
	return t.String(), t.ID, t.Verifier(), nil
}

var _ core.Cluster = (*Node)(nil)
