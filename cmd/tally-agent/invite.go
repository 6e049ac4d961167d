package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/tallyhq/tally/transport/deviceproto"
	"github.com/tallyhq/tally/transport/discovery"
)

// Invitations. An administrator who found this device by a scan can invite
// it to onboard (tallyctl onboard, POST /api/v1/discovery/onboard): the
// server sends `tally-agent listen` an INVITE, signed with its licensing
// ID, holding the endpoints and a one-time key made for this device alone.
// listen accepts it only from the licensing ID it trusts: the one pinned in
// the trust file (by an earlier discover or onboarding), else --identity,
// else, with --accept-first-invite, the first to invite it, which is then
// pinned. It onboards with the key at the endpoints, the leader's first,
// checking the server's identity there too, and says so on stdout.

// inviteTrust decides which licensing IDs may invite the device.
type inviteTrust struct {
	mu sync.Mutex
	// pinned is the trusted fingerprint; zero when none is pinned yet.
	pinned discovery.Fingerprint
	// acceptFirst accepts any licensing ID while none is pinned.
	acceptFirst bool
	// trustPath is the trust file, written after a first-use onboarding.
	trustPath string
}

// newInviteTrust reads the trust file and --identity; they must agree.
func newInviteTrust(identity string, acceptFirst bool, trustPath string, trustErr error) (*inviteTrust, error) {
	t := &inviteTrust{acceptFirst: acceptFirst, trustPath: trustPath}
	if trustErr == nil {
		fp, err := readTrustFile(trustPath)
		if err != nil {
			return nil, err
		}
		t.pinned = fp
	}
	if identity != "" {
		fp, err := discovery.ParseFingerprint(identity)
		if err != nil {
			return nil, usagef("listen --identity: %s", err)
		}
		if !t.pinned.IsZero() && fp != t.pinned {
			return nil, fmt.Errorf("listen --identity %s is not the licensing ID pinned in %s, %s", fp, trustPath, t.pinned)
		}
		t.pinned = fp
	}
	return t, nil
}

// accepts reports whether an INVITE signed by fp may be followed.
func (t *inviteTrust) accepts(fp discovery.Fingerprint) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pinned.IsZero() {
		return t.acceptFirst
	}
	return fp == t.pinned
}

// pin records fp, which accepts took, as the trusted licensing ID once an
// onboarding with it succeeded, and saves it in the trust file when the
// file holds none; saved says it did.
func (t *inviteTrust) pin(fp discovery.Fingerprint) (saved bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pinned = fp
	if t.trustPath == "" {
		return false, nil
	}
	current, err := readTrustFile(t.trustPath)
	if err != nil || current == fp {
		return false, err
	}
	return true, writeTrustFile(t.trustPath, fp)
}

// inviteHandler follows invitations one at a time; one that arrives while
// another is followed is ignored (the server can send it again).
type inviteHandler struct {
	ctx            context.Context
	o              options
	trust          *inviteTrust
	stdout, stderr io.Writer

	mu   sync.Mutex
	busy bool
	wg   sync.WaitGroup
}

// handle is the Answerer's Invite callback: it must return at once, so
// the onboarding runs in its own goroutine.
func (h *inviteHandler) handle(inv discovery.Invitation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy || h.ctx.Err() != nil {
		return
	}
	h.busy = true
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		err := h.follow(inv)
		h.mu.Lock()
		h.busy = false
		h.mu.Unlock()
		if err != nil {
			fmt.Fprintf(h.stderr, "tally-agent: invitation from %s (licensing ID %s): %s\n", inv.From, inv.Fingerprint, oneLine(explainAuth(err).Error()))
		}
	}()
}

// wait waits for an onboarding in progress to end.
func (h *inviteHandler) wait() { h.wg.Wait() }

// follow onboards with the invitation's key at its endpoints.
func (h *inviteHandler) follow(inv discovery.Invitation) error {
	cfg, err := clientConfig(h.o)
	if err != nil {
		return err
	}
	var urls []string
	for _, raw := range inv.URLs() {
		if u, err := deviceURL(raw); err == nil {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return fmt.Errorf("the invitation names no usable endpoint")
	}
	cfg.VerifyFingerprint = inv.Fingerprint.String()
	device, path, err := onboardWith(h.ctx, h.o, cfg, inv.Secret, func(ctx context.Context, cfg deviceproto.ClientConfig) (*deviceproto.Client, error) {
		return dialFirst(ctx, urls, cfg, func() error { return nil })
	})
	if err != nil {
		return err
	}
	saved, err := h.trust.pin(inv.Fingerprint)
	if err != nil {
		return fmt.Errorf("onboarded as %s, but: %w", device, err)
	}
	if saved {
		fmt.Fprintf(h.stderr, "tally-agent: first use: pinned the server's licensing ID %s in %s\n", inv.Fingerprint, h.trust.trustPath)
	}
	if h.o.json {
		return writeJSON(h.stdout, map[string]string{"onboarded": device, "fingerprint": inv.Fingerprint.String(), "from": inv.From.String(), "keyFile": path})
	}
	fmt.Fprintf(h.stdout, "onboarded %s with licensing ID %s (invited by %s)\n", device, inv.Fingerprint, inv.From)
	return nil
}
