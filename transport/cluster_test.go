package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/core"
)

// fakeCluster stands for the replication layer in the cluster routes.
type fakeCluster struct {
	mu      sync.Mutex
	members []core.ClusterMember
	removed []string
	tokens  int
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{members: []core.ClusterMember{
		{ID: "node-a", Address: "10.0.0.1:61616", Voter: true, Reachable: true, State: "Leader", Leader: "node-a", AppliedIndex: 9, LastIndex: 9},
		{ID: "node-b", Address: "10.0.0.2:61616", Voter: true, Reachable: true, State: "Follower", Leader: "node-a", AppliedIndex: 9, LastIndex: 9},
		{ID: "node-c", Address: "10.0.0.3:61616", Voter: true, Reachable: true, State: "Follower", Leader: "node-a", AppliedIndex: 8, LastIndex: 9},
	}}
}

func (f *fakeCluster) ClusterMembers(context.Context) ([]core.ClusterMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]core.ClusterMember(nil), f.members...), nil
}

// RemoveServer refuses a stranger and the last voter as package raft
// does: with an error that wraps core.ErrInvalidCommand.
func (f *fakeCluster) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.members {
		if m.ID == id {
			if len(f.members) == 1 {
				return fmt.Errorf("invalid membership change: %w: %s is the last voter", core.ErrInvalidCommand, id)
			}
			f.members = append(f.members[:i], f.members[i+1:]...)
			f.removed = append(f.removed, id)
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not a member", core.ErrInvalidCommand, id)
}

// Admit answers the request "let me in" proven with "proof".
func (f *fakeCluster) Admit(_ context.Context, request, proof []byte, _ string) ([]byte, []byte, error) {
	if string(request) != "let me in" || string(proof) != "proof" {
		return nil, nil, fmt.Errorf("join refused: %w", core.ErrUnknownJoinToken)
	}
	return []byte("welcome"), []byte("answer proof"), nil
}

func (f *fakeCluster) NewJoinToken() (string, string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens++
	id := fmt.Sprintf("%016x", f.tokens)
	return "tly1." + id + ".secret", id, bytes.Repeat([]byte{byte(f.tokens)}, 32), nil
}

func newClusterEnv(t *testing.T) (*testEnv, *fakeCluster) {
	fc := newFakeCluster()
	return newTestEnv(t, func(c *Config) { c.Cluster = fc }), fc
}

func TestClusterView(t *testing.T) {
	e, fc := newClusterEnv(t)
	var v clusterView
	e.do("GET", "/api/v1/cluster", "", "", true).json(t, &v)
	if v.StateLevel != 1 {
		t.Fatalf("a new state at level %d", v.StateLevel)
	}
	e.store.mustApply(t, &core.RaiseLevel{Level: core.Level})
	r := e.do("GET", "/api/v1/cluster", "", "", true)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Node != "node-a" || v.Leader != "node-a" || !v.Healthy || v.Voters != 3 || v.Quorum != 2 || len(v.Members) != 3 || v.StateLevel != core.Level {
		t.Fatalf("view %s", r.body)
	}
	// A voter that does not answer makes the cluster unhealthy.
	fc.mu.Lock()
	fc.members[2].Reachable, fc.members[2].Error = false, "connection refused"
	fc.mu.Unlock()
	e.do("GET", "/api/v1/cluster", "", "", true).json(t, &v)
	if v.Healthy {
		t.Fatal("healthy with a voter unreachable")
	}
	if r := e.do("DELETE", "/api/v1/cluster/members/node-c", "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	e.do("GET", "/api/v1/cluster", "", "", true).json(t, &v)
	if !v.Healthy || v.Voters != 2 || len(fc.removed) != 1 {
		t.Fatalf("after removal: %+v", v)
	}
	// The removal is in the audit log, with who asked.
	var audit struct{ Items []core.AuditRecord }
	e.do("GET", "/api/v1/audit", "", "", true).json(t, &audit)
	last := audit.Items[len(audit.Items)-1]
	if last.Action != "memberChanged" || last.User != "admin" || last.Detail != "removed node node-c from the cluster" {
		t.Fatalf("last audit record %+v", last)
	}
	wantError(t, e.do("DELETE", "/api/v1/cluster/members/node-x", "", "", true), http.StatusBadRequest, "invalid_command")
}

// TestRemoveLastVoter: the one member left cannot be removed; that is the
// caller's mistake (400 invalid_command), not the server's fault (500).
func TestRemoveLastVoter(t *testing.T) {
	e, fc := newClusterEnv(t)
	for _, id := range []string{"node-c", "node-b"} {
		if r := e.do("DELETE", "/api/v1/cluster/members/"+id, "", "", true); r.status != http.StatusNoContent {
			t.Fatalf("remove %s: %d %s", id, r.status, r.body)
		}
	}
	r := e.do("DELETE", "/api/v1/cluster/members/node-a", "", "", true)
	wantError(t, r, http.StatusBadRequest, "invalid_command")
	if !bytes.Contains(r.body, []byte("last voter")) {
		t.Errorf("the refusal does not say why: %s", r.body)
	}
	if members, _ := fc.ClusterMembers(t.Context()); len(members) != 1 {
		t.Fatalf("members after the refusal: %+v", members)
	}
}

func TestJoinTokens(t *testing.T) {
	e, _ := newClusterEnv(t)
	r := e.do("POST", "/api/v1/cluster/tokens", "application/json", `{"description":"rack 2","ttlSeconds":600}`, true)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created newJoinTokenResponse
	r.json(t, &created)
	if !strings.HasPrefix(created.Token, "tly1.") || created.ID == "" || created.Description != "rack 2" || !created.Expires.Equal(t0.Add(600e9)) {
		t.Fatalf("created %s", r.body)
	}
	var list countedList[core.JoinTokenSummary]
	r = e.do("GET", "/api/v1/cluster/tokens", "", "", true)
	r.json(t, &list)
	if list.Total != 1 || list.Items[0].ID != created.ID || bytes.Contains(r.body, []byte("secret")) || bytes.Contains(r.body, []byte("verifier")) {
		t.Fatalf("list %s", r.body)
	}
	for body, code := range map[string]string{`{"ttlSeconds":0}`: "invalid_join_token", `{"ttlSeconds":1e9}`: "invalid_join_token",
		`{"ttl":5}`: "bad_json", `[]`: "bad_json"} {
		wantError(t, e.do("POST", "/api/v1/cluster/tokens", "application/json", body, true), http.StatusBadRequest, code)
	}
	if r := e.do("DELETE", "/api/v1/cluster/tokens/"+created.ID, "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, e.do("DELETE", "/api/v1/cluster/tokens/"+created.ID, "", "", true), http.StatusNotFound, "unknown_join_token")
}

func TestJoinRoute(t *testing.T) {
	e, _ := newClusterEnv(t)
	body, _ := json.Marshal(joinMessage{Message: []byte("let me in"), Proof: []byte("proof")})
	// No token needed: the proof is the credential.
	r := e.do("POST", "/api/v1/cluster/join", "application/json", string(body), false)
	if r.status != http.StatusOK {
		t.Fatalf("join: %d %s", r.status, r.body)
	}
	var answer joinMessage
	r.json(t, &answer)
	if string(answer.Message) != "welcome" || string(answer.Proof) != "answer proof" {
		t.Fatalf("answer %s", r.body)
	}
	bad, _ := json.Marshal(joinMessage{Message: []byte("let me in"), Proof: []byte("guess")})
	wantError(t, e.do("POST", "/api/v1/cluster/join", "application/json", string(bad), false), http.StatusNotFound, "unknown_join_token")
	wantError(t, e.do("POST", "/api/v1/cluster/join", "application/json", `{"message":"not base64!"}`, false), http.StatusBadRequest, "bad_json")
}

func TestClusterRoutesWithoutCluster(t *testing.T) {
	e := newTestEnv(t)
	wantError(t, e.do("GET", "/api/v1/cluster", "", "", true), http.StatusServiceUnavailable, "not_available")
	wantError(t, e.do("POST", "/api/v1/cluster/join", "application/json", `{}`, false), http.StatusServiceUnavailable, "not_available")
}

// TestLicensingIDPerServer: in a cluster every member has a row: the one
// whose local ID is the main one, those that sign with it, and those that
// do not or do not answer.
func TestLicensingIDPerServer(t *testing.T) {
	e, fc := newClusterEnv(t)
	main := e.id.Fingerprint()
	fc.mu.Lock()
	fc.members[0].Info = map[string]string{core.InfoHost: "host-a", core.InfoLocalID: main, core.InfoSigningID: main}
	fc.members[1].Info = map[string]string{core.InfoHost: "host-b", core.InfoLocalID: "BB", core.InfoSigningID: main}
	fc.members[2].Info = map[string]string{core.InfoHost: "host-c", core.InfoLocalID: "CC", core.InfoSigningID: "CC"}
	fc.members = append(fc.members, core.ClusterMember{ID: "node-d", Voter: true, Error: "timeout"})
	fc.mu.Unlock()
	var v licensingIDResponse
	r := e.do("GET", "/api/v1/licensing-id", "", "", true)
	r.json(t, &v)
	want := []string{"host-a Running Main licensing ID", "host-b Running in sync", "host-c Running not in sync", "node-d Not running not in sync"}
	if len(v.Servers) != len(want) {
		t.Fatalf("servers %s", r.body)
	}
	for i, s := range v.Servers {
		if got := s.Host + " " + s.ServerStatus + " " + s.IDStatus; got != want[i] {
			t.Errorf("server %d: %q, want %q", i, got, want[i])
		}
	}
}
