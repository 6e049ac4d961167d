package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Forming with a bootstrap secret (--bootstrap-secret-file). Without one,
// forming trusts the LAN: any host there can announce itself as a forming
// node with a low node ID and become the seed. With one, every founding
// node holds the same secret, and
//   - an announcement carries auth, an HMAC of its node ID, expectation and
//     forming certificate hash; nodes ignore announcements without a valid
//     one, so a stranger neither becomes the seed nor takes a founding
//     place;
//   - a certificate request carries an HMAC of its body (Tally-Form-Auth),
//     which the seed checks before it signs anything;
//   - the seed's answer carries an HMAC of the request and the answer,
//     which the asking node checks before it trusts the CA in it.
// The HMAC key is derived from the secret for forming alone.

// formAuthHeader carries a request's or answer's HMAC.
const formAuthHeader = "Tally-Form-Auth"

// Bounds on a bootstrap secret, in bytes.
const (
	minBootstrapSecret = 16
	maxBootstrapSecret = 1024
)

// errFormAuth refuses a request that is not proven with the secret.
var errFormAuth = errors.New("the request is not proven with the bootstrap secret")

// formAuth proves and checks forming messages; nil proves nothing and
// accepts everything (no secret).
type formAuth struct{ key []byte }

// newFormAuth derives the forming key from a secret.
func newFormAuth(secret []byte) *formAuth {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tally-form/1"))
	return &formAuth{key: m.Sum(nil)}
}

// readBootstrapSecret reads a secret file: its bytes, without a final
// line break, 16 to 1024 of them.
func readBootstrapSecret(path string) (*formAuth, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap secret: %w", err)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if n := len(secret); n < minBootstrapSecret || n > maxBootstrapSecret {
		return nil, fmt.Errorf("bootstrap secret in %s has %d bytes; want %d to %d", path, n, minBootstrapSecret, maxBootstrapSecret)
	}
	return newFormAuth([]byte(secret)), nil
}

// mac is the HMAC of parts, each prefixed by its length, in hex; "" with
// no secret.
func (a *formAuth) mac(parts ...[]byte) string {
	if a == nil {
		return ""
	}
	m := hmac.New(sha256.New, a.key)
	for _, p := range parts {
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// check reports whether tag is want, the MAC a message should carry (one
// of announcement, request or answer); with no secret, always.
func (a *formAuth) check(tag, want string) bool {
	return a == nil || hmac.Equal([]byte(tag), []byte(want))
}

// announcement is the auth of a forming announcement.
func (a *formAuth) announcement(nodeID string, expect int, tlsHash string) string {
	return a.mac([]byte("announce"), []byte(nodeID), []byte(strconv.Itoa(expect)), []byte(tlsHash))
}

// request is the auth of a certificate request's body.
func (a *formAuth) request(body []byte) string {
	return a.mac([]byte("request"), body)
}

// answer is the auth of the seed's answer to request.
func (a *formAuth) answer(request, answer []byte) string {
	return a.mac([]byte("answer"), request, answer)
}
