package main

import (
	"net/http"
	"strings"
	"testing"
)

// addClusterRoutes serves the cluster routes from fixed data.
func (f *fakeServer) addClusterRoutes(authed func(string, func(http.ResponseWriter, *http.Request))) {
	authed("GET /api/v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"node": "n1", "leader": "n1", "healthy": false, "voters": 3, "quorum": 2, "stateLevel": 1, "members": []map[string]any{
			{"id": "n1", "address": "10.0.0.1:61616", "voter": true, "reachable": true, "state": "Leader", "leader": "n1", "appliedIndex": 42, "lastIndex": 42, "lastContact": "2026-03-01T12:00:00Z", "level": 2},
			{"id": "n2", "address": "10.0.0.2:61616", "voter": true, "reachable": true, "state": "Follower", "leader": "n1", "appliedIndex": 41, "lastIndex": 42},
			{"id": "n3", "address": "10.0.0.3:61616", "voter": true, "reachable": false, "error": "connection refused", "appliedIndex": 0, "lastIndex": 0},
		}})
	})
	authed("DELETE /api/v1/cluster/members/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "n3" {
			writeError(w, 400, "n9 is not a member", "invalid_command")
			return
		}
		w.WriteHeader(204)
	})
	authed("POST /api/v1/cluster/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{"token": "tly1.0123456789abcdef.c2VjcmV0", "id": "0123456789abcdef", "created": "2026-03-01T12:00:00Z", "expires": "2026-03-01T13:00:00Z"})
	})
	authed("GET /api/v1/cluster/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"total": 2, "items": []map[string]any{
			{"id": "0123456789abcdef", "description": "rack 2", "created": "2026-03-01T12:00:00Z", "expires": "2026-03-01T13:00:00Z", "usedBy": "n3", "usedAt": "2026-03-01T12:05:00Z"},
			{"id": "fedcba9876543210", "created": "2026-03-01T12:00:00Z", "expires": "2026-03-01T12:30:00Z", "expired": true},
		}})
	})
	authed("DELETE /api/v1/cluster/tokens/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
}

func TestClusterCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	args := func(a ...string) []string { return append(serverArgs(f, false, pw), a...) }
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"cluster", "status"}, []string{"leader n1, 3 voters (quorum 2), NOT healthy", "state level 1\n", "LEVEL", "n2", "Follower", "NOT running: connection refused"}},
		{[]string{"cluster", "remove", "n3"}, []string{"removed n3 from the cluster"}},
		{[]string{"cluster", "token", "--ttl", "1h", "--description", "rack 2"}, []string{"tly1.0123456789abcdef.c2VjcmV0\n"}},
		{[]string{"cluster", "tokens"}, []string{"admitted n3", "expired", "rack 2"}},
		{[]string{"cluster", "delete-token", "0123456789abcdef"}, []string{"deleted join token 0123456789abcdef"}},
	} {
		r := tallyctl(nil, args(c.args...)...)
		for _, w := range c.want {
			if r.code != 0 || !strings.Contains(r.stdout, w) {
				t.Errorf("%v: exit %d, stdout %q lacks %q, stderr %q", c.args, r.code, r.stdout, w, r.stderr)
			}
		}
	}
	if got := f.body("POST /api/v1/cluster/tokens"); got != `{"description":"rack 2","ttlSeconds":3600}` {
		t.Errorf("token request %s", got)
	}
	if r := tallyctl(nil, args("cluster", "remove", "n9")...); r.code == 0 || !strings.Contains(r.stderr, "not a member") {
		t.Errorf("removing a stranger: exit %d, %q", r.code, r.stderr)
	}
	for _, a := range [][]string{{"cluster"}, {"cluster", "bogus"}, {"cluster", "remove"}, {"cluster", "token", "--ttl", "0s"},
		{"cluster", "token", "--ttl", "200h"}, {"cluster", "status", "x"}} {
		if r := tallyctl(nil, args(a...)...); r.code != exitUsage {
			t.Errorf("%v: exit %d, stderr %q", a, r.code, r.stderr)
		}
	}
}
