// Package envelopetest builds and takes apart signed envelopes the way the
// format is documented (package envelope), independently of the code that
// reads them, so that tests can sign what the packages refuse to sign: other
// payloads, other contexts, other keys.
package envelopetest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// Seal signs body with key in the given context ("" for none) and wraps it
// in an envelope of the given format naming keyName as the signer.
func Seal(t testing.TB, key *ecdsa.PrivateKey, format, context, keyName string, body []byte) []byte {
	t.Helper()
	h := sha256.New()
	if context != "" {
		h.Write([]byte(context))
		h.Write([]byte{0})
	}
	h.Write(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return Envelope(format, keyName, body, sig)
}

// Envelope wraps a payload and a signature as they are given.
func Envelope(format, keyName string, body, sig []byte) []byte {
	out, _ := json.Marshal(map[string]string{
		"format": format, "key": keyName,
		"payload": base64.StdEncoding.EncodeToString(body), "signature": base64.StdEncoding.EncodeToString(sig),
	})
	return out
}

// Fields decodes an envelope for tampering: its fields, payload and
// signature.
func Fields(t testing.TB, data []byte) (env map[string]string, body, sig []byte) {
	t.Helper()
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	body, _ = base64.StdEncoding.DecodeString(env["payload"])
	sig, _ = base64.StdEncoding.DecodeString(env["signature"])
	return env, body, sig
}
