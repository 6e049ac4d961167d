package licensingid

import (
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tallyhq/tally/core/sealed"
)

// The backup is a file of package sealed; the plaintext is the length of
// the PKCS#8 DER key as 2 bytes, the key, and then the DER certificate.
const (
	// maxPlaintext bounds the key and certificate together; a licensing ID
	// made by Generate needs well under 1 KiB.
	maxPlaintext = 64 << 10
	// minPlaintext is the key length prefix and at least one byte each of
	// key and certificate.
	minPlaintext = 2 + 1 + 1
	maxKeyDER    = 1<<16 - 1
)

// idFormat is the licensing ID backup's kind of sealed file.
var idFormat = sealed.Format{
	Magic:         "TALLYIDB",
	MinPlaintext:  minPlaintext,
	MaxPlaintext:  maxPlaintext,
	What:          "licensing ID backup",
	Damaged:       ErrDamaged,
	WrongPassword: ErrWrongPassword,
}

// kdfParams are the argon2id parameters of a backup.
type kdfParams = sealed.KDF

// defaultKDF returns the parameters Backup uses: memory-hard at 64 MiB.
func defaultKDF() kdfParams { return sealed.DefaultKDF() }

// Backup encrypts the licensing ID under password into the backup format
// described in the package comment. Salt and nonce are drawn from random.
func Backup(id *ID, password []byte, random io.Reader) ([]byte, error) {
	return backup(id, password, random, defaultKDF())
}

// backup is Backup with the argon2id parameters given, so that tests can keep
// the key derivation cheap.
func backup(id *ID, password []byte, random io.Reader, params kdfParams) ([]byte, error) {
	if len(password) == 0 {
		return nil, ErrEmptyPassword
	}
	if random == nil {
		return nil, errors.New("back up licensing ID: no source of randomness")
	}
	if err := params.Check(); err != nil {
		return nil, fmt.Errorf("back up licensing ID: %w", err)
	}
	if id == nil {
		return nil, fmt.Errorf("back up licensing ID: %w: no ID", ErrMalformed)
	}
	if _, err := newID(id.Key, id.Certificate); err != nil {
		return nil, fmt.Errorf("back up licensing ID: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("back up licensing ID: encode key: %w", err)
	}
	defer clear(keyDER)
	if len(keyDER) > maxKeyDER || 2+len(keyDER)+len(id.Certificate) > maxPlaintext {
		return nil, fmt.Errorf("back up licensing ID: %w: key and certificate exceed %d bytes", ErrMalformed, maxPlaintext)
	}
	plaintext := make([]byte, 0, 2+len(keyDER)+len(id.Certificate))
	plaintext = binary.BigEndian.AppendUint16(plaintext, uint16(len(keyDER)))
	plaintext = append(plaintext, keyDER...)
	plaintext = append(plaintext, id.Certificate...)
	defer clear(plaintext)
	out, err := idFormat.Seal(plaintext, password, random, params)
	if err != nil {
		return nil, fmt.Errorf("back up licensing ID: %w", err)
	}
	return out, nil
}

// Restore decrypts a backup made by Backup. It returns an error wrapping
// ErrDamaged when the data is not an intact backup, and ErrWrongPassword when
// it does not open with password. It derives a key only after the whole file
// has been checked, and never panics.
func Restore(data, password []byte) (*ID, error) {
	plaintext, err := idFormat.Open(data, password)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	keyDERLen := int(binary.BigEndian.Uint16(plaintext))
	if keyDERLen == 0 || 2+keyDERLen >= len(plaintext) {
		return nil, fmt.Errorf("%w: key length %d does not fit the contents", ErrDamaged, keyDERLen)
	}
	idKey, err := parsePKCS8(plaintext[2 : 2+keyDERLen])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	id, err := newID(idKey, plaintext[2+keyDERLen:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return id, nil
}
