package transport

import (
	"net/http"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
)

// TestDevicesShowOnlineState: the Devices views say which devices hold a
// live connection, as the device handler reports it.
func TestDevicesShowOnlineState(t *testing.T) {
	connected, _ := hostid.Parse("press-1", "STRING")
	idle, _ := hostid.Parse("press-2", "STRING")
	e := newTestEnv(t, func(c *Config) {
		c.Online = func(id hostid.HostID) bool { return id == connected }
	})
	for _, id := range []hostid.HostID{connected, idle} {
		e.store.mustApply(t, &core.Hello{Device: core.DeviceInfo{ID: id}})
	}
	var list struct {
		Items []struct {
			ID     hostid.HostID `json:"id"`
			Online bool          `json:"online"`
		} `json:"items"`
	}
	r := e.do("GET", "/api/v1/devices", "", "", true)
	r.json(t, &list)
	// The environment holds three more devices, none connected.
	online := map[hostid.HostID]bool{}
	for _, d := range list.Items {
		online[d.ID] = d.Online
		if d.Online && d.ID != connected {
			t.Errorf("%v is shown online", d.ID)
		}
	}
	if r.status != http.StatusOK || len(online) != 5 || !online[connected] || online[idle] {
		t.Fatalf("devices: %d %s", r.status, r.body)
	}
	for id, want := range map[hostid.HostID]bool{connected: true, idle: false} {
		var detail struct {
			Info   core.DeviceInfo `json:"info"`
			Online bool            `json:"online"`
		}
		r := e.do("GET", "/api/v1/devices/STRING/"+id.Value, "", "", true)
		r.json(t, &detail)
		if r.status != http.StatusOK || detail.Online != want || detail.Info.ID != id {
			t.Fatalf("device %v: %d %s", id, r.status, r.body)
		}
	}
}
