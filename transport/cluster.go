package transport

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/tallyhq/tally/core"
)

// The cluster routes: the members and their health, removing a member,
// join tokens, and the join itself. The join is public: a joining node has
// no account, and proves instead that it holds a join token (the proof,
// not the token, travels; core.Cluster.Admit checks it).

const (
	// maxJoinBody bounds the body of a join.
	maxJoinBody = 96 << 10
	// defaultJoinTokenTTL is how long a join token lasts unless asked.
	defaultJoinTokenTTL = time.Hour
)

// clusterView answers GET /api/v1/cluster.
type clusterView struct {
	// Node is the node that answered, Leader the leader it knows.
	Node   string `json:"node"`
	Leader string `json:"leader"`
	// Healthy says every voter answered and they agree on a leader.
	Healthy bool                 `json:"healthy"`
	Voters  int                  `json:"voters"`
	Quorum  int                  `json:"quorum"`
	Members []core.ClusterMember `json:"members"`
	// StateLevel is the state level in force (core.Level); it rises once
	// every member applies the higher one.
	StateLevel int `json:"stateLevel"`
}

// requireCluster refuses a cluster route on a node without one.
func (s *Server) requireCluster() error {
	if s.cfg.Cluster == nil {
		return fmt.Errorf("%w: this node does not run as a cluster member", errNotAvailable)
	}
	return nil
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireCluster(); err != nil {
		return err
	}
	members, err := s.cfg.Cluster.ClusterMembers(r.Context())
	if err != nil {
		return err
	}
	v := clusterView{Node: s.cfg.NodeID, Members: members, Healthy: true}
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		v.StateLevel = st.Level()
		return nil
	})
	if err != nil {
		return err
	}
	leaders := map[string]bool{}
	for _, m := range members {
		if m.ID == s.cfg.NodeID {
			v.Leader = m.Leader
		}
		if !m.Voter {
			continue
		}
		v.Voters++
		if !m.Reachable {
			v.Healthy = false
			continue
		}
		leaders[m.Leader] = true
	}
	v.Quorum = v.Voters/2 + 1
	if len(leaders) != 1 || leaders[""] {
		v.Healthy = false
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireCluster(); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.cfg.Cluster.RemoveServer(r.Context(), id); err != nil {
		return err
	}
	p := principalOf(r)
	s.log.Info("cluster member removed", "node", id, "user", p.user.Name, "remote", p.address)
	// The removal is raft's and has happened; the audit log records it
	// with who asked, once the state is at the level that records
	// membership changes.
	level := 0
	s.cfg.Store.Read(r.Context(), func(st *core.State) error { level = st.Level(); return nil })
	if level >= core.MemberChangeLevel {
		if err := s.apply(r, &core.MemberChanged{Change: core.MemberRemoved, Node: id}); err != nil {
			s.log.Error("membership change not recorded in the audit log", "node", id, "user", p.user.Name, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listJoinTokens(w http.ResponseWriter, r *http.Request) error {
	var items []core.JoinTokenSummary
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		items = st.JoinTokens()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, countedList[core.JoinTokenSummary]{Total: len(items), Items: items})
	return nil
}

// newJoinTokenRequest is the body of POST /api/v1/cluster/tokens.
type newJoinTokenRequest struct {
	Description string   `json:"description"`
	TTLSeconds  *float64 `json:"ttlSeconds"`
}

// newJoinTokenResponse shows a new token: the only time its secret is
// shown.
type newJoinTokenResponse struct {
	Token string `json:"token"`
	core.JoinTokenSummary
}

func (s *Server) createJoinToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireCluster(); err != nil {
		return err
	}
	var req newJoinTokenRequest
	if err := readOptionalJSON(w, r, maxDiscoveryBody, &req); err != nil {
		return err
	}
	ttl := defaultJoinTokenTTL
	if req.TTLSeconds != nil {
		v := *req.TTLSeconds
		if math.IsNaN(v) || v <= 0 || v > core.MaxJoinTokenLifetime.Seconds() {
			return fmt.Errorf("%w: ttlSeconds %v is not above 0 and at most %v", core.ErrInvalidJoinToken, v, core.MaxJoinTokenLifetime.Seconds())
		}
		ttl = time.Duration(v * float64(time.Second))
	}
	token, id, verifier, err := s.cfg.Cluster.NewJoinToken()
	if err != nil {
		return err
	}
	c := &core.CreateJoinToken{ID: id, Verifier: verifier, Expires: s.cfg.Now().Add(ttl).UTC().Truncate(time.Second), Description: req.Description}
	if err := s.apply(r, c); err != nil {
		return err
	}
	resp := newJoinTokenResponse{Token: token}
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		for _, t := range st.JoinTokens() {
			if t.ID == id {
				resp.JoinTokenSummary = t
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) deleteJoinToken(w http.ResponseWriter, r *http.Request) error {
	return s.applyNoContent(w, r, &core.DeleteJoinToken{ID: r.PathValue("id")})
}

// joinMessage is the body of POST /api/v1/cluster/join and of its answer:
// the message bytes and their proof.
type joinMessage struct {
	Message []byte `json:"message"`
	Proof   []byte `json:"proof"`
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireCluster(); err != nil {
		return err
	}
	var req joinMessage
	if err := readJSON(w, r, maxJoinBody, &req); err != nil {
		return err
	}
	resp, proof, err := s.cfg.Cluster.Admit(r.Context(), req.Message, req.Proof, r.RemoteAddr)
	if err != nil {
		s.log.Warn("join refused", "remote", r.RemoteAddr, "err", err)
		return err
	}
	writeJSON(w, http.StatusOK, joinMessage{Message: resp, Proof: proof})
	return nil
}
