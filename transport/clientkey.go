package transport

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/licensingid"
)

// clientKeyBits is the one size of RSA client key accepted.
const clientKeyBits = 2048

// clientKeyResponse is the answer of GET and POST /api/v1/client-key.
type clientKeyResponse struct {
	Present     bool   `json:"present"`
	Bits        int    `json:"bits,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// parseClientKey reads the DER of a 2048-bit RSA public key, as a
// SubjectPublicKeyInfo or as PKCS#1, and returns it as a
// SubjectPublicKeyInfo, the one form the state keeps. Every refusal wraps
// core.ErrInvalidClientKey and says what was wrong.
func parseClientKey(der []byte) ([]byte, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: the body is empty; send the DER bytes of a %d-bit RSA public key", core.ErrInvalidClientKey, clientKeyBits)
	}
	if bytes.HasPrefix(bytes.TrimSpace(der), []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: this is PEM; send the DER bytes (openssl rsa -pubin -outform DER)", core.ErrInvalidClientKey)
	}
	var key *rsa.PublicKey
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: this is a %s public key; want a %d-bit RSA public key", core.ErrInvalidClientKey, keyKind(pub), clientKeyBits)
		}
		key = rk
	} else if rk, err1 := x509.ParsePKCS1PublicKey(der); err1 == nil {
		key = rk
	} else {
		return nil, fmt.Errorf("%w: not the DER of an RSA public key (SubjectPublicKeyInfo or PKCS#1)", core.ErrInvalidClientKey)
	}
	if bits := key.N.BitLen(); bits != clientKeyBits {
		return nil, fmt.Errorf("%w: this is a %d-bit RSA key; want %d bits", core.ErrInvalidClientKey, bits, clientKeyBits)
	}
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", core.ErrInvalidClientKey, err)
	}
	return spki, nil
}

// keyKind names the algorithm of a public key for an error message.
func keyKind(pub any) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "ECDH"
	}
	return "non-RSA"
}

// uploadClientKey installs the client key. A body past core.MaxClientKeyLen
// is refused as an invalid client key, as any other wrong key is.
func (s *Server) uploadClientKey(w http.ResponseWriter, r *http.Request) error {
	if err := checkContentType(r, mediaBinary); err != nil {
		return err
	}
	der, err := io.ReadAll(http.MaxBytesReader(w, r.Body, core.MaxClientKeyLen))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return fmt.Errorf("%w: larger than %d bytes; a %d-bit RSA public key in DER is under 300", core.ErrInvalidClientKey, core.MaxClientKeyLen, clientKeyBits)
		}
		return badRequest("bad_body", "reading the request body: "+err.Error())
	}
	spki, err := parseClientKey(der)
	if err != nil {
		return err
	}
	if err := s.apply(r, &core.SetClientKey{DER: spki}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, describeClientKey(spki))
	return nil
}

func (s *Server) getClientKey(w http.ResponseWriter, r *http.Request) error {
	var der []byte
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		der = st.ClientKey()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, describeClientKey(der))
	return nil
}

// describeClientKey says whether a client key is installed, its size and
// the SHA-256 of its DER SubjectPublicKeyInfo.
func describeClientKey(der []byte) clientKeyResponse {
	if len(der) == 0 {
		return clientKeyResponse{}
	}
	out := clientKeyResponse{Present: true, Fingerprint: licensingid.Fingerprint(der)}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		if rk, ok := pub.(*rsa.PublicKey); ok {
			out.Bits = rk.N.BitLen()
		}
	}
	return out
}
