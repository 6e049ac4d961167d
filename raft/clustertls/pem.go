package clustertls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// decodePEM returns the bytes of the one PEM block of type typ in data.
// Anything else in data but white space is refused.
func decodePEM(data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("PEM block has headers")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	return block.Bytes, nil
}

// marshalKeyPEM writes key as a PKCS #8 PEM block.
func marshalKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: der}), nil
}

// parseKeyPEM reads one ECDSA P-256 key, PKCS #8 or SEC 1.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	der, err := decodePEM(data, block.Type)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case pemPKCS8Key:
		key, err = x509.ParsePKCS8PrivateKey(der)
	case pemSEC1Key:
		key, err = x509.ParseECPrivateKey(der)
	default:
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemPKCS8Key)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || !isP256(&ec.PublicKey) {
		return nil, errors.New("key is not ECDSA P-256")
	}
	return ec, nil
}

// isP256 reports whether pub is an ECDSA P-256 public key.
func isP256(pub any) bool {
	ec, ok := pub.(*ecdsa.PublicKey)
	return ok && ec.Curve == elliptic.P256()
}
