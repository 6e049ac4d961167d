package transport

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/discovery"
)

// TestInvite: an administrator invites a device a scan found. The server
// makes a one-time key bound to the device, audited, and the agent gets
// the key in an INVITE signed by the server's licensing ID; asking again
// reuses the key; a device not found, an onboarded one and bad input are
// refused and change nothing.
func TestInvite(t *testing.T) {
	e, rig := newDiscoveryEnv(t)
	const body = `{"device":{"type":"ETHERNET","value":"00-11-22-33-44-55"}}`
	invite := func() response { return e.do("POST", "/api/v1/discovery/onboard", "application/json", body, true) }
	audit := func() int {
		n := 0
		e.store.Read(t.Context(), func(st *core.State) error { n = st.AuditCount(); return nil })
		return n
	}
	keys := func() []core.KeySummary {
		var ks []core.KeySummary
		e.store.Read(t.Context(), func(st *core.State) error { ks = st.Keys(core.KeyFilter{}); return nil })
		return ks
	}

	before, keysBefore := audit(), len(keys())
	wantError(t, invite(), http.StatusNotFound, "not_discovered")
	if audit() != before || len(keys()) != keysBefore {
		t.Fatal("a refused invitation changed the state")
	}

	scan := fmt.Sprintf(`{"targets":["%s"],"timeoutSeconds":0.5}`, rig.agent)
	if r := e.do("POST", "/api/v1/discovery/scan", "application/json", scan, true); r.status != http.StatusAccepted {
		t.Fatalf("scan: %d %s", r.status, r.body)
	}
	waitScan(t, e)

	r := invite()
	if r.status != http.StatusAccepted {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	var res inviteResponse
	r.json(t, &res)
	mac := hostid.HostID{Type: hostid.Ethernet, Value: agentMAC}
	if res.Device != mac || res.SentTo != rig.agent.String() || res.Key == "" {
		t.Fatalf("answer %s", r.body)
	}
	var inv discovery.Invitation
	select {
	case inv = <-rig.invites:
	case <-time.After(time.Minute):
		t.Fatal("the agent got no invitation")
	}
	var key core.KeySummary
	for _, k := range keys() {
		if k.ID == res.Key {
			key = k
		}
	}
	if key.Type != core.KeyOneTime || key.For != mac || key.State != core.KeyActive || key.Secret != inv.Secret {
		t.Fatalf("key %+v, invitation secret %q", key, inv.Secret)
	}
	if inv.Device != (discovery.HostID{Type: discovery.HostIDEthernet, Value: agentMAC}) || inv.Fingerprint != rig.responder.Fingerprint() ||
		len(inv.URLs()) != 1 || inv.URLs()[0] != "wss://127.0.0.1:8443/ws/device" {
		t.Fatalf("invitation %+v", inv)
	}
	if audit() != before+1 {
		t.Fatalf("%d audit records for the invitation, want 1", audit()-before)
	}

	// Again: the same key, nothing new in the log.
	r = invite()
	var again inviteResponse
	r.json(t, &again)
	if r.status != http.StatusAccepted || again.Key != res.Key || audit() != before+1 {
		t.Fatalf("second invitation: %d %s, %d records", r.status, r.body, audit()-before)
	}
	if inv := <-rig.invites; inv.Secret != key.Secret {
		t.Fatal("the second invitation carries another secret")
	}

	// Bad input, and a device no scan found.
	wantError(t, e.do("POST", "/api/v1/discovery/onboard", "application/json", `{}`, true), http.StatusBadRequest, "bad_json")
	wantError(t, e.do("POST", "/api/v1/discovery/onboard", "application/json", `{"device":{"type":"ETHERNET","value":"zz"}}`, true), http.StatusBadRequest, "bad_hostid")
	wantError(t, e.do("POST", "/api/v1/discovery/onboard", "application/json", `{"device":{"type":"STRING","value":"press-1"}}`, true), http.StatusNotFound, "not_discovered")

	// Once the device onboarded with the key, it is not invited again.
	e.store.mustApply(t, &core.Onboard{Device: core.DeviceInfo{ID: mac, Type: core.DevicePhysical}, Secret: inv.Secret, PublicKey: []byte("device key")})
	records := audit()
	wantError(t, invite(), http.StatusConflict, "already_onboarded")
	if audit() != records {
		t.Fatal("a refused invitation wrote the audit log")
	}
}
