package clustertls

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Sizes and spelling of join tokens.
const (
	tokenPrefix      = "tly1."
	tokenIDBytes     = 8
	tokenIDLen       = 2 * tokenIDBytes
	tokenSecretBytes = 32
	tokenSecretLen   = 43 // base64url of 32 bytes, no padding
	tokenLen         = len(tokenPrefix) + tokenIDLen + 1 + tokenSecretLen
	// VerifierSize is the length of a join token's verifier and of a
	// join proof.
	VerifierSize = sha256.Size
)

// Contexts of join proofs. A proof made for one is never valid for the
// other, so an answer cannot be sent back as a request.
const (
	JoinRequestContext  = "tally-join-request/1"
	JoinResponseContext = "tally-join-response/1"
	// verifierContext is what a token's secret keys to make its verifier.
	verifierContext = "tally-join-verifier/1"
)

// A JoinToken admits one node to a cluster. ID names it in the open; Secret
// (32 bytes) is known only to the operator and the joining node. The
// cluster keeps ID and Verifier, never Secret.
type JoinToken struct {
	ID     string
	Secret []byte
}

var tokenEncoding = base64.RawURLEncoding.Strict()

// NewJoinToken makes a token with an ID of 8 random bytes (16 lower-case hex
// digits) and a secret of 32 random bytes. nil random means crypto/rand.
func NewJoinToken(random io.Reader) (JoinToken, error) {
	if random == nil {
		random = rand.Reader
	}
	var b [tokenIDBytes + tokenSecretBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return JoinToken{}, fmt.Errorf("make join token: %w", err)
	}
	return JoinToken{ID: hex.EncodeToString(b[:tokenIDBytes]), Secret: b[tokenIDBytes:]}, nil
}

// String writes the token as the operator handles it:
// "tly1.<ID>.<secret in base64url without padding>". It reveals the secret;
// logs should show ID only (a JoinToken given to slog does).
func (t JoinToken) String() string {
	return tokenPrefix + t.ID + "." + tokenEncoding.EncodeToString(t.Secret)
}

// LogValue shows only the token's ID to slog.
func (t JoinToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", t.ID))
}

// ParseJoinToken reads a token as String writes it, and nothing else: a
// token has exactly one spelling. Errors wrap ErrBadToken and do not repeat
// the secret.
func ParseJoinToken(s string) (JoinToken, error) {
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		return JoinToken{}, fmt.Errorf("%w: not of the form tly1.<id>.<secret>", ErrBadToken)
	}
	id, secret, ok := strings.Cut(s[len(tokenPrefix):], ".")
	if !ok || len(id) != tokenIDLen || len(secret) != tokenSecretLen {
		return JoinToken{}, fmt.Errorf("%w: not of the form tly1.<id>.<secret>", ErrBadToken)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return JoinToken{}, fmt.Errorf("%w: ID %q is not 16 lower-case hex digits", ErrBadToken, id)
		}
	}
	raw, err := tokenEncoding.DecodeString(secret)
	// The decoder skips line breaks, so only re-encoding proves the
	// spelling is the one String writes.
	if err != nil || len(raw) != tokenSecretBytes || tokenEncoding.EncodeToString(raw) != secret {
		return JoinToken{}, fmt.Errorf("%w: secret of token %s is not 32 bytes in base64url", ErrBadToken, id)
	}
	return JoinToken{ID: id, Secret: raw}, nil
}

// Verifier is what the cluster stores for the token and what both sides
// key their join proofs with: HMAC-SHA256(Secret, "tally-join-verifier/1").
// Whoever holds it can admit nodes, so it is kept like the cluster's other
// secrets; it does not reveal Secret.
func (t JoinToken) Verifier() []byte {
	m := hmac.New(sha256.New, t.Secret)
	m.Write([]byte(verifierContext))
	return m.Sum(nil)
}

// JoinProof proves knowledge of a token's verifier over one message of a
// join: HMAC-SHA256(verifier, context || 0x00 || body), where context is
// JoinRequestContext or JoinResponseContext and body the exact bytes sent.
// It panics when verifier is not VerifierSize bytes or context holds a zero
// byte: both are mistakes of the caller, never of the peer.
func JoinProof(verifier []byte, context string, body []byte) []byte {
	if len(verifier) != VerifierSize {
		panic(fmt.Sprintf("clustertls: join verifier of %d bytes, want %d", len(verifier), VerifierSize))
	}
	if strings.IndexByte(context, 0) >= 0 {
		panic("clustertls: join proof context holds a zero byte")
	}
	m := hmac.New(sha256.New, verifier)
	m.Write([]byte(context))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// CheckJoinProof reports, in constant time, whether proof is
// JoinProof(verifier, context, body). A verifier that is not VerifierSize
// bytes (say nil, for a token the cluster does not know) never checks.
func CheckJoinProof(verifier []byte, context string, body, proof []byte) bool {
	if len(verifier) != VerifierSize || strings.IndexByte(context, 0) >= 0 {
		return false
	}
	return hmac.Equal(JoinProof(verifier, context, body), proof)
}
