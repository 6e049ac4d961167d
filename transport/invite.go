package transport

import (
	"fmt"
	"net/http"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/discovery"
)

// Onboarding a discovered device. An administrator picks a device from the
// discovered list; the server makes a one-time first-authentication key
// bound to that device (core.NewKey.For), replicated and audited like any
// key, and sends its secret in a signed INVITE to the address the device
// answered the scan from. `tally-agent listen` checks the signature against
// the licensing ID it trusts and onboards with the key. Because the key is
// bound to the device, a copy of the secret seen on the LAN onboards
// nothing else. Asking again reuses the device's unused key, so retries do
// not pile up keys.

// inviteResponse answers an invitation: the device, the key made for it and
// where the INVITE went.
type inviteResponse struct {
	Device hostid.HostID `json:"device"`
	Key    string        `json:"key"`
	SentTo string        `json:"sentTo"`
}

func (s *Server) inviteDevice(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireDiscovery(); err != nil {
		return err
	}
	id, err := readDevice(w, r)
	if err != nil {
		return err
	}
	dev, ok := s.disc.lookup(id)
	if !ok {
		return fmt.Errorf("%w: no scan on this node found %s; scan first", errNotDiscovered, id)
	}
	var keyID, secret string
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		if _, onboarded := st.DeviceCredential(id); onboarded {
			return fmt.Errorf("%w: %s has a credential; drop the device before onboarding it again", core.ErrAlreadyOnboarded, id)
		}
		for _, k := range st.Keys(core.KeyFilter{Type: core.KeyOneTime, State: core.KeyActive}) {
			if k.For == id {
				keyID, secret = k.ID, k.Secret
				break
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if keyID == "" {
		if keyID, err = newKeyID(s.cfg.Random); err != nil {
			return err
		}
		if secret, err = newKeySecret(s.cfg.Random); err != nil {
			return err
		}
		c := &core.CreateKeys{KeyType: core.KeyOneTime, Keys: []core.NewKey{{
			ID: keyID, Secret: secret, For: id, Description: "invitation to " + dev.Address,
		}}}
		if err := s.apply(r, c); err != nil {
			return err
		}
	}
	to := discovery.HostID{Type: discovery.HostIDType(id.Type), Value: id.Value}
	p := principalOf(r)
	if err := s.cfg.Discovery.Invite(dev.addr, to, secret); err != nil {
		// The key stays: it onboards only this device, and the next
		// invitation reuses it.
		s.log.Warn("invitation not sent", "device", id, "to", dev.addr, "err", err, "user", p.user.Name, "remote", p.address)
		return fmt.Errorf("%w: %v", errSendFailed, err)
	}
	s.log.Info("invitation sent", "device", id, "to", dev.addr, "key", keyID, "user", p.user.Name, "remote", p.address)
	writeJSON(w, http.StatusAccepted, inviteResponse{Device: id, Key: keyID, SentTo: dev.addr.String()})
	return nil
}

// lookup returns the discovered device whose device ID is id.
func (d *discoveryState) lookup(id hostid.HostID) (discoveredDevice, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devices[id]
	if !ok {
		return discoveredDevice{}, false
	}
	return *dev, true
}
