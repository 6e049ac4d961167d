package device

import (
	"bytes"
	"context"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// Onboarding and authentication. Both run on the reading goroutine, like
// hello, so that the requests after them see their effect. The handler
// checks the device's proof of possession (a signature over the
// connection's challenge); whether a key may onboard the device is decided
// by core.Onboard inside the state machine.

// credential reads the device's credential.
func (c *conn) credential(ctx context.Context, id hostid.HostID) (cred []byte, ok bool, err error) {
	err = c.h.cfg.Store.Read(ctx, func(s *core.State) error {
		cred, ok = s.DeviceCredential(id)
		return nil
	})
	return cred, ok, err
}

// admit registers the connection for its device once the hello is applied.
func (c *conn) admit() {
	c.mu.Lock()
	already := c.registered
	c.registered = true
	device := c.device
	c.mu.Unlock()
	if !already {
		c.h.register(c, device)
	}
}

// recheck closes the window between reading the credential and
// registering: if an Onboard was applied meanwhile (gen moved), the
// credential is read again. A later Onboard finds the connection
// registered and reaches it through Handler.credentialChanged.
func (c *conn) recheck(ctx context.Context, gen uint64) {
	if c.h.onboards.Load() == gen {
		return
	}
	device, _ := c.helloDevice()
	cred, ok, err := c.credential(ctx, device)
	if err != nil || !ok {
		return
	}
	c.credentialIs(cred)
}

// credentialIs records that the device now has cred as its credential: the
// connection must have proved it holds that key to be served.
func (c *conn) credentialIs(cred []byte) {
	c.mu.Lock()
	c.mustAuth = true
	if c.authKey != nil && !bytes.Equal(c.authKey, cred) {
		c.authKey = nil
	}
	c.mu.Unlock()
}

// credentialChanged tells the connections of device that it was onboarded
// with the public key cred.
func (h *Handler) credentialChanged(device hostid.HostID, cred []byte) {
	h.onboards.Add(1)
	if device == (hostid.HostID{}) {
		return
	}
	h.mu.Lock()
	conns := append([]*conn(nil), h.byDevice[device]...)
	h.mu.Unlock()
	for _, c := range conns {
		c.credentialIs(cred)
	}
}

// proven marks the connection as holding cred and registers it.
func (c *conn) proven(cred []byte) {
	c.mu.Lock()
	c.mustAuth, c.authKey = true, cred
	c.mu.Unlock()
	c.admit()
}

// refuse answers a failed onboard or authenticate. Refusals count against
// MaxAuthFailures, except those that say nothing about the attempt (the
// server could not complete it); the refusal that reaches the limit closes
// the connection.
func (c *conn) refuse(id uint64, err error) (end bool) {
	c.replyError(id, err)
	switch errorFor(err).code {
	case deviceproto.CodeNotApplied, deviceproto.CodeShuttingDown, deviceproto.CodeInternal, deviceproto.CodeRateLimited:
		return false
	}
	c.failures++
	c.h.sources.failed(source(c.addr))
	if c.failures < c.h.cfg.MaxAuthFailures {
		return false
	}
	c.h.metrics.authClosed.Add(1)
	c.h.cfg.Logger.Info("device connection closed after failed authentication attempts",
		"device", c.currentDevice(), "address", c.addr, "failures", c.failures)
	c.finish(websocket.ClosePolicyViolation, "too many failed authentication attempts")
	return true
}

// sourceLimited turns away an attempt from an address that has failed too
// often lately, on any connection, and closes the connection.
func (c *conn) sourceLimited(id uint64) (end bool) {
	if c.h.sources.allowed(source(c.addr)) {
		return false
	}
	c.h.metrics.authClosed.Add(1)
	c.replyError(id, newError(deviceproto.CodeRateLimited, "too many failed authentication attempts from this address; try again later"))
	c.finish(websocket.ClosePolicyViolation, "too many failed authentication attempts")
	return true
}

// saidHello returns what the hello on the connection said.
func (c *conn) saidHello() (core.DeviceInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info, c.said
}

// attempt starts an onboard or authenticate: the address must not be over
// its failure limit, the connection must have said hello, and the body must
// decode into msg. When it reports !ok the attempt has been answered and end
// says whether the connection ends.
func (c *conn) attempt(env deviceproto.Envelope, msg any) (info core.DeviceInfo, ok, end bool) {
	if c.sourceLimited(env.ID) {
		return info, false, true
	}
	info, said := c.saidHello()
	if !said {
		c.replyError(env.ID, newError(deviceproto.CodeHelloRequired, "say hello first"))
		return info, false, false
	}
	if err := decodeBody(env.Body, msg); err != nil {
		return info, false, c.refuse(env.ID, err)
	}
	return info, true, false
}

// onboard checks that the device holds the key it presents, then applies
// core.Onboard, which decides whether the first-authentication key may
// onboard it.
func (c *conn) onboard(env deviceproto.Envelope) (end bool) {
	var msg deviceproto.Onboard
	info, ok, end := c.attempt(env, &msg)
	if !ok {
		return end
	}
	h := c.h
	if len(msg.PublicKey) == 0 || len(msg.PublicKey) > core.MaxDevicePublicKey {
		return c.refuse(env.ID, newError(deviceproto.CodeInvalidKey,
			fmt.Sprintf("publicKey has %d bytes; want a DER SubjectPublicKeyInfo of at most %d", len(msg.PublicKey), core.MaxDevicePublicKey)))
	}
	pub, err := deviceproto.ParseDevicePublicKey(msg.PublicKey)
	if err != nil {
		return c.refuse(env.ID, newError(deviceproto.CodeInvalidKey, oneLine(err.Error())))
	}
	if err := deviceproto.VerifyChallenge(pub, deviceproto.OnboardDigest(c.challenge, h.cfg.Certificate), msg.Signature); err != nil {
		h.metrics.badProofs.Add(1)
		return c.refuse(env.ID, newError(deviceproto.CodeAuthFailed,
			"the signature does not prove possession of publicKey: sign SHA-256(\"tally-onboard/1\" || challenge || identity fingerprint)"))
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.ApplyTimeout)
	defer cancel()
	res, err := h.cfg.Store.Apply(ctx, &core.Onboard{Device: info, Secret: msg.Key, PublicKey: msg.PublicKey, Address: c.addr})
	if err != nil {
		return c.refuse(env.ID, err)
	}
	if res.Onboarded != info.ID {
		// A retried command whose first application this node cannot see.
		c.replyError(env.ID, fmt.Errorf("onboard of %s answered for %q", info.ID, res.Onboarded))
		return false
	}
	c.setSession(res)
	c.proven(msg.PublicKey)
	h.metrics.onboarded.Add(1)
	h.cfg.Logger.Info("device onboarded", "device", info.ID, "address", c.addr)
	c.reply(deviceproto.TypeOnboarded, env.ID, deviceproto.Onboarded{Device: wireHostID(info.ID)})
	return false
}

// authenticate checks the device's signature over the challenge against
// its credential. A hello that waited for it is applied then.
func (c *conn) authenticate(env deviceproto.Envelope) (end bool) {
	var msg deviceproto.Authenticate
	info, ok, end := c.attempt(env, &msg)
	if !ok {
		return end
	}
	h := c.h
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.ApplyTimeout)
	defer cancel()
	gen := h.onboards.Load()
	cred, onboarded, err := c.credential(ctx, info.ID)
	if err != nil {
		c.replyError(env.ID, err)
		return false
	}
	if !onboarded {
		return c.refuse(env.ID, newError(deviceproto.CodeAuthFailed,
			fmt.Sprintf("device %s is not onboarded: onboard it with a first-authentication key", info.ID)))
	}
	pub, err := deviceproto.ParseDevicePublicKey(cred)
	if err != nil {
		c.replyError(env.ID, fmt.Errorf("the credential of %s: %w", info.ID, err))
		return false
	}
	if err := deviceproto.VerifyChallenge(pub, deviceproto.AuthDigest(c.challenge, h.cfg.Certificate), msg.Signature); err != nil {
		h.metrics.badProofs.Add(1)
		h.cfg.Logger.Info("device authentication failed", "device", info.ID, "address", c.addr)
		return c.refuse(env.ID, newError(deviceproto.CodeAuthFailed,
			fmt.Sprintf("the signature does not verify with the key device %s onboarded with", info.ID)))
	}
	if _, registered := c.helloDevice(); !registered {
		res, err := h.cfg.Store.Apply(ctx, &core.Hello{Device: info})
		if err != nil {
			c.replyError(env.ID, err)
			return false
		}
		c.setSession(res)
	}
	c.proven(cred)
	c.recheck(ctx, gen)
	h.metrics.authed.Add(1)
	c.reply(deviceproto.TypeAuthenticated, env.ID, deviceproto.Authenticated{Device: wireHostID(info.ID)})
	return false
}
