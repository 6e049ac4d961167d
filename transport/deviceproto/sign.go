package deviceproto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// Errors of signing and verification.
var (
	// ErrBadSignature is wrapped when a signed payload does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrBadCertificate is wrapped when an identity certificate cannot be
	// used to verify payloads.
	ErrBadCertificate = errors.New("bad identity certificate")
)

// Fingerprint returns the SHA-256 of a DER certificate as colon-separated
// upper-case hex pairs, as `openssl x509 -noout -fingerprint -sha256`
// prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// NormalizeFingerprint puts a fingerprint in the form Fingerprint writes,
// accepting lower case and pairs without colons.
func NormalizeFingerprint(fp string) string {
	h := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	var b strings.Builder
	for i := 0; i+1 < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	if len(h)%2 == 1 {
		return fp // not pairs; let the comparison fail
	}
	return b.String()
}

// IdentityKey returns the ECDSA P-256 public key of an identity certificate.
func IdentityKey(der []byte) (*ecdsa.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key is not ECDSA P-256", ErrBadCertificate)
	}
	return pub, nil
}

// Merkle tree hashing as in RFC 9162: leaves and interior nodes are hashed
// with distinct prefixes so that one can never pass for the other.
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

func leafHash(payload []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(payload)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right []byte) [32]byte {
	var buf [65]byte
	buf[0] = nodePrefix
	copy(buf[1:], left)
	copy(buf[33:], right)
	return sha256.Sum256(buf[:])
}

// SignBatch signs payloads with the identity key. One payload is signed on
// its own: the signature covers SHA-256 of the payload bytes. More are
// signed together: the signature covers the root of a Merkle tree over
// them and each result carries its Proof. random is passed to the signer.
func SignBatch(signer crypto.Signer, random io.Reader, payloads [][]byte) ([]Signed, error) {
	out := make([]Signed, len(payloads))
	switch len(payloads) {
	case 0:
		return out, nil
	case 1:
		sum := sha256.Sum256(payloads[0])
		sig, err := signer.Sign(random, sum[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("sign a payload: %w", err)
		}
		out[0] = Signed{Payload: payloads[0], Signature: sig}
		return out, nil
	}
	leaves := make([][32]byte, len(payloads))
	for i, p := range payloads {
		leaves[i] = leafHash(p)
	}
	depth := bits.Len(uint(len(payloads) - 1))
	paths := make([][][]byte, len(payloads))
	for i := range paths {
		paths[i] = make([][]byte, 0, depth)
	}
	root := buildTree(leaves, paths)
	sig, err := signer.Sign(random, root[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign a batch of %d payloads: %w", len(payloads), err)
	}
	for i, p := range payloads {
		out[i] = Signed{Payload: p, Signature: sig, Proof: &Proof{Index: i, Size: len(payloads), Path: paths[i]}}
	}
	return out, nil
}

// buildTree returns the RFC 9162 tree hash of leaves and appends to each
// leaf's path the siblings on its way to the root, nearest first.
func buildTree(leaves [][32]byte, paths [][][]byte) [32]byte {
	n := len(leaves)
	if n == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(n-1)) - 1) // the largest power of two below n
	left := buildTree(leaves[:k], paths[:k])
	right := buildTree(leaves[k:], paths[k:])
	l, r := left, right
	for i := range paths[:k] {
		paths[i] = append(paths[i], r[:])
	}
	for i := range paths[k:] {
		paths[k+i] = append(paths[k+i], l[:])
	}
	return nodeHash(left[:], right[:])
}

// Verify checks a signed payload against the identity key: either a
// signature over SHA-256 of the payload, or, with a Proof, a signature over
// the Merkle root the proof leads to. It does not look inside the payload.
func Verify(pub *ecdsa.PublicKey, s Signed) error {
	if s.Proof == nil {
		sum := sha256.Sum256(s.Payload)
		if !ecdsa.VerifyASN1(pub, sum[:], s.Signature) {
			return ErrBadSignature
		}
		return nil
	}
	root, err := proofRoot(leafHash(s.Payload), s.Proof)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub, root[:], s.Signature) {
		return ErrBadSignature
	}
	return nil
}

// proofRoot walks an audit path from a leaf to the root (RFC 9162,
// section 2.1.3.2).
func proofRoot(leaf [32]byte, p *Proof) ([32]byte, error) {
	if p.Size < 2 || p.Index < 0 || p.Index >= p.Size || len(p.Path) > 64 {
		return [32]byte{}, fmt.Errorf("%w: proof for leaf %d of %d", ErrBadSignature, p.Index, p.Size)
	}
	fn, sn := uint64(p.Index), uint64(p.Size-1)
	r := leaf
	for _, sib := range p.Path {
		if len(sib) != 32 || sn == 0 {
			return [32]byte{}, fmt.Errorf("%w: malformed audit path", ErrBadSignature)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(sib, r[:])
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r[:], sib)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return [32]byte{}, fmt.Errorf("%w: audit path too short", ErrBadSignature)
	}
	return r, nil
}
