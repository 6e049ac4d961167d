package discovery

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds any bytes to Decode: it must not panic, must refuse
// with ErrVersion or ErrMalformed, and whatever it accepts must encode back
// to the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, b := range samplePackets(f, newIdentity(f)) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Decode refused with %v", err)
			}
			return
		}
		if len(b) > MaxPacketSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		again, err := Encode(p)
		if err != nil {
			t.Fatalf("Encode of a decoded packet: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n%x\n%x", b, again)
		}
	})
}

// fuzzOfferNonce is the nonce of the seed OFFERs of FuzzVerifyOffer.
var fuzzOfferNonce = Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// FuzzVerifyOffer feeds any bytes to the OFFER verification path: it must
// not panic, must refuse with one of the package's errors, and must accept
// only an OFFER whose fingerprint is its certificate's and whose nonce is
// the one expected.
func FuzzVerifyOffer(f *testing.F) {
	for _, b := range samplePackets(f, newIdentity(f)) {
		f.Add(b)
	}
	policy := VerifyPolicy{Nonce: fuzzOfferNonce, Now: testNow, MaxSkew: time.Minute}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := VerifyOffer(b, policy)
		if err != nil {
			for _, known := range []error{ErrMalformed, ErrVersion, ErrNonce, ErrFingerprint, ErrBadCertificate, ErrBadSignature, ErrStale} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("VerifyOffer refused with %v", err)
		}
		if sha(o.Certificate) != o.Fingerprint || len(o.Endpoints) == 0 || o.NodeID == "" {
			t.Fatalf("accepted %+v", o)
		}
	})
}

// FuzzVerifyInvite feeds any bytes to the INVITE verification path: it must
// not panic, must refuse with one of the package's errors, and must accept
// only an INVITE whose fingerprint is its certificate's and that names a
// device and carries a valid secret.
func FuzzVerifyInvite(f *testing.F) {
	for _, b := range samplePackets(f, newIdentity(f)) {
		f.Add(b)
	}
	policy := VerifyPolicy{Now: testNow, MaxSkew: InviteMaxSkew}
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := VerifyInvite(b, policy)
		if err != nil {
			for _, known := range []error{ErrMalformed, ErrVersion, ErrFingerprint, ErrBadCertificate, ErrBadSignature, ErrStale} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("VerifyInvite refused with %v", err)
		}
		if sha(inv.Certificate) != inv.Fingerprint || len(inv.Endpoints) == 0 || inv.NodeID == "" ||
			!validHostID(inv.Device) || !validSecret(inv.Secret) {
			t.Fatalf("accepted %+v", inv)
		}
	})
}
