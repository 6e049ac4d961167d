package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// decodeBody reads a message body; a missing body reads as empty.
func decodeBody(raw json.RawMessage, out any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return newError(deviceproto.CodeMalformed, "body does not match the message type: "+oneLine(err.Error()))
	}
	return nil
}

// hello handles a hello on the reading goroutine, so that requests after it
// see its effect. It reports whether the connection must end.
func (c *conn) hello(env deviceproto.Envelope) (end bool) {
	var msg deviceproto.Hello
	if err := decodeBody(env.Body, &msg); err != nil {
		c.replyError(env.ID, err)
		return false
	}
	if msg.Protocol != deviceproto.Protocol {
		c.replyError(env.ID, newError(deviceproto.CodeUnsupportedProtocol,
			fmt.Sprintf("protocol %s is not supported; this server speaks %s", quote(msg.Protocol), deviceproto.Protocol)))
		c.finish(websocket.CloseProtocolError, "unsupported protocol")
		return true
	}
	info, err := deviceInfo(msg)
	if err != nil {
		c.replyError(env.ID, err)
		return false
	}
	c.mu.Lock()
	cur, said := c.device, c.said
	c.mu.Unlock()
	if said && cur != info.ID {
		c.replyError(env.ID, newError(deviceproto.CodeDeviceMismatch,
			fmt.Sprintf("this connection speaks for %s, not %s", cur, info.ID)))
		return false
	}
	h := c.h
	if c.challenge == nil {
		c.challenge = make([]byte, deviceproto.ChallengeSize)
		if _, err := io.ReadFull(h.cfg.Random, c.challenge); err != nil {
			c.challenge = nil
			c.replyError(env.ID, fmt.Errorf("make a challenge: %w", err))
			return false
		}
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.ApplyTimeout)
	defer cancel()
	// An onboarded device's details change only once it has proved who it
	// is: until then the hello is answered but not applied.
	gen := h.onboards.Load()
	cred, onboarded, err := c.credential(ctx, info.ID)
	if err != nil {
		c.replyError(env.ID, err)
		return false
	}
	c.mu.Lock()
	proven := onboarded && c.authKey != nil && bytes.Equal(c.authKey, cred)
	c.mu.Unlock()
	if !onboarded || proven {
		res, err := h.cfg.Store.Apply(ctx, &core.Hello{Device: info})
		if err != nil {
			c.replyError(env.ID, err)
			return false
		}
		c.setSession(res)
	}
	pol, err := h.policy.get(ctx)
	if err != nil {
		c.replyError(env.ID, err)
		return false
	}
	c.reply(deviceproto.TypeWelcome, env.ID, deviceproto.Welcome{
		Protocol:    deviceproto.Protocol,
		Node:        h.cfg.NodeID,
		Device:      wireHostID(info.ID),
		Fingerprint: h.cfg.Fingerprint,
		Certificate: h.cfg.Certificate,
		RenewHint: deviceproto.RenewHint{
			BorrowSeconds:           int64(pol.borrow / time.Second),
			RenewPercent:            pol.renewPercent,
			ResponseLifetimeSeconds: int64(pol.responseLifetime / time.Second),
		},
		ServerTime: h.cfg.Now().UTC(),
		Limits: deviceproto.Limits{
			MaxMessageBytes: h.cfg.MaxMessageBytes,
			MaxRate:         max(h.cfg.MaxRate, 0),
			MaxInFlight:     h.cfg.MaxInFlight,
			MaxFeatures:     deviceproto.MaxFeatures,
		},
		Challenge: c.challenge,
		Onboarded: onboarded,
	})
	c.mu.Lock()
	c.device, c.info, c.said = info.ID, info, true
	c.mustAuth = onboarded
	if !proven {
		c.authKey = nil
	}
	c.mu.Unlock()
	if !onboarded || proven {
		c.admit()
	}
	c.recheck(ctx, gen)
	return false
}

// deviceInfo checks a hello and turns it into what core records.
func deviceInfo(msg deviceproto.Hello) (core.DeviceInfo, error) {
	var info core.DeviceInfo
	if len(msg.HostIDs) == 0 {
		return info, newError(deviceproto.CodeInvalidDevice, "hello names no hostid")
	}
	if len(msg.HostIDs) > deviceproto.MaxHostIDs {
		return info, newError(deviceproto.CodeInvalidDevice,
			fmt.Sprintf("hello names %d hostids, at most %d", len(msg.HostIDs), deviceproto.MaxHostIDs))
	}
	for i, w := range msg.HostIDs {
		id, err := hostid.Parse(w.Value, w.Type)
		if err != nil {
			return info, newError(deviceproto.CodeInvalidDevice, fmt.Sprintf("hostid %d: %s", i+1, oneLine(err.Error())))
		}
		info.HostIDs = append(info.HostIDs, id)
	}
	info.ID = info.HostIDs[0]
	if msg.DeviceType != "" {
		t, err := core.ParseDeviceType(msg.DeviceType)
		if err != nil {
			return info, newError(deviceproto.CodeInvalidDevice, oneLine(err.Error()))
		}
		info.Type = t
	}
	info.Alias, info.Hostname, info.User = msg.Alias, msg.Hostname, msg.User
	info.Attributes = msg.Attributes
	return info, nil
}

// request is a decoded request of a device that has said hello.
type request struct {
	id uint64
	// features are the features asked for; nil for status.
	features []deviceproto.FeatureRequest
}

// decodeRequest decodes the body of capabilityRequest, renew, return or
// status.
func decodeRequest(env deviceproto.Envelope) (request, error) {
	r := request{id: env.ID}
	switch env.Type {
	case deviceproto.TypeStatus:
		var msg deviceproto.StatusRequest
		return r, decodeBody(env.Body, &msg)
	case deviceproto.TypeReturn:
		var msg deviceproto.ReturnRequest
		if err := decodeBody(env.Body, &msg); err != nil {
			return r, err
		}
		r.features = make([]deviceproto.FeatureRequest, len(msg.Features))
		for i, f := range msg.Features {
			r.features[i] = deviceproto.FeatureRequest{Name: f.Name, Version: f.Version}
		}
	default: // capabilityRequest and renew
		var msg deviceproto.CapabilityRequest
		if err := decodeBody(env.Body, &msg); err != nil {
			return r, err
		}
		r.features = msg.Features
		if r.features == nil {
			r.features = []deviceproto.FeatureRequest{}
		}
	}
	return r, nil
}

// handle runs a request on its own goroutine.
func (c *conn) handle(r request) {
	h := c.h
	device, err := c.admitted()
	if err != nil {
		c.replyError(r.id, err)
		return
	}
	ctx := h.applyContexts.get()
	if r.features == nil {
		err = c.status(ctx, r.id, device)
	} else {
		err = c.capability(ctx, r.id, device, c.currentSession(), r.features)
	}
	if err != nil {
		c.replyError(r.id, err)
	}
}

func (c *conn) status(ctx context.Context, id uint64, device hostid.HostID) error {
	st := deviceproto.Status{Device: wireHostID(device), Leases: []deviceproto.Lease{}}
	err := c.h.cfg.Store.Read(ctx, func(s *core.State) error {
		d, err := s.Device(device)
		if err != nil {
			return err
		}
		for _, l := range d.Leases {
			st.Leases = append(st.Leases, deviceproto.Lease{
				Feature: l.Feature, Version: l.Version.String(), Count: l.Count,
				Overdraft: l.Overdraft, Granted: l.Granted, Expiry: l.Expiry,
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.reply(deviceproto.TypeStatus, id, st)
	return nil
}

// checkouts turns feature requests into core commands, refusing the whole
// request when one of them is malformed.
func checkouts(device hostid.HostID, session uint64, reqs []deviceproto.FeatureRequest) ([]core.Checkout, error) {
	if len(reqs) == 0 {
		return nil, newError(deviceproto.CodeInvalidRequest, "the request names no feature")
	}
	if len(reqs) > deviceproto.MaxFeatures {
		return nil, newError(deviceproto.CodeInvalidRequest,
			fmt.Sprintf("the request names %d features, at most %d", len(reqs), deviceproto.MaxFeatures))
	}
	out := make([]core.Checkout, len(reqs))
	for i, f := range reqs {
		if f.Name == "" {
			return nil, newError(deviceproto.CodeInvalidFeature, fmt.Sprintf("feature %d has no name", i+1))
		}
		v, err := version.Parse(f.Version)
		if err != nil {
			return nil, newError(deviceproto.CodeInvalidVersion, fmt.Sprintf("feature %s: %s", quote(f.Name), oneLine(err.Error())))
		}
		if f.Count < 0 || f.Count > core.MaxCount {
			return nil, newError(deviceproto.CodeInvalidCount,
				fmt.Sprintf("feature %s: count %d is outside 0..%d", quote(f.Name), f.Count, core.MaxCount))
		}
		const maxBorrow = 3650 * 24 * 60 * 60
		if f.BorrowSeconds < 0 || f.BorrowSeconds > maxBorrow {
			return nil, newError(deviceproto.CodeInvalidRequest,
				fmt.Sprintf("feature %s: borrowSeconds %d is outside 0..%d", quote(f.Name), f.BorrowSeconds, maxBorrow))
		}
		for _, prev := range out[:i] {
			if prev.Feature == f.Name && version.Compare(prev.Version, v) == 0 {
				return nil, newError(deviceproto.CodeInvalidRequest, fmt.Sprintf("feature %s %s is named twice", quote(f.Name), v))
			}
		}
		out[i] = core.Checkout{Device: device, Feature: f.Name, Version: v, Count: f.Count,
			Borrow: time.Duration(f.BorrowSeconds) * time.Second, Conn: session}
	}
	return out, nil
}

// capability applies one checkout per feature, concurrently when there are
// several, and answers with a signed payload. An error means some features
// may have been applied; counts are desired counts, so a retry is safe.
func (c *conn) capability(ctx context.Context, id uint64, device hostid.HostID, session uint64, reqs []deviceproto.FeatureRequest) error {
	h := c.h
	cmds, err := checkouts(device, session, reqs)
	if err != nil {
		return err
	}
	results := make([]core.Result, len(cmds))
	errs := make([]error, len(cmds))
	if len(cmds) == 1 {
		results[0], errs[0] = h.cfg.Store.Apply(ctx, &cmds[0])
	} else {
		var wg sync.WaitGroup
		for i := range cmds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = h.cfg.Store.Apply(ctx, &cmds[i])
			}()
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	pol, err := h.policy.get(ctx)
	if err != nil {
		return err
	}
	now := h.cfg.Now().UTC()
	p := deviceproto.Payload{
		Device: wireHostID(device), RequestID: id, Issued: now, Expires: now.Add(pol.responseLifetime),
		Grants: make([]deviceproto.Grant, len(cmds)),
	}
	for i, res := range results {
		g := res.Grant
		p.Grants[i] = deviceproto.Grant{
			Feature: cmds[i].Feature, Version: cmds[i].Version.String(), Count: g.Count,
			Overdraft: g.Overdraft, Expiry: g.Expiry, RenewAt: g.RenewAt,
		}
		switch {
		case res.Denied != core.NotDenied:
			reason := denialName(res.Denied)
			h.metrics.countDenial(reason)
			p.Denials = append(p.Denials, deviceproto.Denial{
				Feature: cmds[i].Feature, Version: cmds[i].Version.String(),
				Count: cmds[i].Count, Held: g.Count, Reason: reason,
			})
		case cmds[i].Count == 0:
			h.metrics.returns.Add(1)
		default:
			h.metrics.checkouts.Add(1)
		}
	}
	pbuf := msgBuffers.Get().(*[]byte)
	payload, ok := deviceproto.AppendPayload((*pbuf)[:0], &p)
	if !ok {
		if payload, err = json.Marshal(p); err != nil {
			return err
		}
	}
	signed, err := h.signer.sign(ctx, payload)
	if err != nil {
		return err // the signer may still hold payload: pbuf is not reused
	}
	mbuf := msgBuffers.Get().(*[]byte)
	*mbuf = deviceproto.AppendSigned((*mbuf)[:0], deviceproto.TypeCapabilityResponse, id, &signed)
	if ok {
		*pbuf = payload[:0]
		msgBuffers.Put(pbuf)
	}
	c.enqueueBuffer(mbuf)
	return nil
}
