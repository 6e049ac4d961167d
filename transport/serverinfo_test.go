package transport

import (
	"encoding/pem"
	"net/http"
	"slices"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
)

// TestServerInfo: the General group of the Properties view. The hostids
// come from Config.HostIDs in their order, the first in use; the cluster
// ID is the cluster CA's fingerprint, empty without one; the status names
// the node's role.
func TestServerInfo(t *testing.T) {
	mac, err := hostid.New("00:11:22:33:44:55", hostid.Ethernet)
	if err != nil {
		t.Fatal(err)
	}
	uuid, err := hostid.New("4c4c4544-0042-3510-8052-b4c04f4e3232", hostid.UUID)
	if err != nil {
		t.Fatal(err)
	}
	caDER := []byte("the cluster CA certificate")
	withCA := func(t *testing.T, fs *fakeStore) {
		fs.mustApply(t, &core.SetClusterCA{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), KeyPEM: []byte("key")})
	}
	for _, tc := range []struct {
		name      string
		config    func(*Config)
		setup     func(*testing.T, *fakeStore)
		hostIDs   []serverHostID
		clusterID string
		status    string
		leader    bool
	}{
		{name: "a node alone without hostids", hostIDs: []serverHostID{}, status: "running (leader)", leader: true},
		{name: "hostids in hw's order, the first in use",
			config: func(c *Config) {
				c.HostIDs = func() []hostid.HostID { return []hostid.HostID{mac, uuid} }
				c.Build = "0123456789ab go1.26.0 linux/arm64"
			},
			hostIDs: []serverHostID{{Type: hostid.Ethernet, Value: mac.Value, InUse: true}, {Type: hostid.UUID, Value: uuid.Value}},
			status:  "running (leader)", leader: true},
		{name: "a follower of a cluster",
			config:  func(c *Config) { c.Leader = func() bool { return false } },
			setup:   withCA,
			hostIDs: []serverHostID{}, clusterID: licensingid.Fingerprint(caDER), status: "running (follower)"},
		{name: "a machine whose hostids cannot be read",
			config:  func(c *Config) { c.HostIDs = func() []hostid.HostID { return nil } },
			setup:   withCA,
			hostIDs: []serverHostID{}, clusterID: licensingid.Fingerprint(caDER), status: "running (leader)", leader: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var build string
			e := newTestEnv(t, func(c *Config) {
				if tc.config != nil {
					tc.config(c)
				}
				build = c.Build
			})
			if tc.setup != nil {
				tc.setup(t, e.store)
			}
			r := e.do("GET", "/api/v1/server", "", "", true)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var got serverInfo
			r.json(t, &got)
			if got.Version != "1.2.3" || got.Build != build || got.Node != "node-a" || got.Fingerprint != e.id.Fingerprint() {
				t.Errorf("identity %s", r.body)
			}
			if got.ClusterID != tc.clusterID || got.Status != tc.status || got.Leader != tc.leader {
				t.Errorf("clusterId %q, status %q, leader %v; want %q, %q, %v", got.ClusterID, got.Status, got.Leader,
					tc.clusterID, tc.status, tc.leader)
			}
			if !slices.Equal(got.HostIDs, tc.hostIDs) {
				t.Errorf("hostIds %+v, want %+v (%s)", got.HostIDs, tc.hostIDs, r.body)
			}
		})
	}
}

// TestServerInfoForEveryRole: a READ user reads it; without a login it is
// refused (it shows the machine's hostids), and a store that cannot read
// answers 503 like every view.
func TestServerInfoForEveryRole(t *testing.T) {
	e := newTestEnv(t)
	e.store.addUser(t, "reader", "reader password", core.RoleRead)
	if r := e.doAs(e.loginAs("reader", "reader password"), "GET", "/api/v1/server", "", ""); r.status != http.StatusOK {
		t.Fatalf("READ: %d %s", r.status, r.body)
	}
	wantError(t, e.do("GET", "/api/v1/server", "", "", false), http.StatusUnauthorized, "unauthorized")
	e.token = e.login(testPassword)
	e.store.setNotApplied(true)
	wantError(t, e.do("GET", "/api/v1/server", "", "", true), http.StatusServiceUnavailable, "not_applied")
}
