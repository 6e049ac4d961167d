package licensingid

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The backup format; the package comment describes it.
const (
	backupMagic   = "TALLYIDB"
	backupVersion = 1

	saltLen     = 16
	keyLen      = chacha20poly1305.KeySize
	nonceLen    = chacha20poly1305.NonceSizeX
	tagLen      = chacha20poly1305.Overhead
	checksumLen = sha256.Size

	offVersion   = len(backupMagic)
	offMemory    = offVersion + 1
	offTime      = offMemory + 4
	offThreads   = offTime + 4
	offSalt      = offThreads + 1
	offNonce     = offSalt + saltLen
	offCipherLen = offNonce + nonceLen
	headerLen    = offCipherLen + 4

	// maxPlaintext bounds the key and certificate together; a licensing ID
	// made by Generate needs well under 1 KiB.
	maxPlaintext = 64 << 10
	// minPlaintext is the key length prefix and at least one byte each of
	// key and certificate.
	minPlaintext = 2 + 1 + 1
	maxKeyDER    = 1<<16 - 1
)

// Bounds on the argon2id parameters a backup may ask for. They keep a crafted
// or damaged file from demanding more than 1 GiB or minutes of work.
const (
	maxMemoryKiB     = 1 << 20
	minMemoryPerLane = 8 // KiB; the argon2 minimum
	maxTime          = 16
	maxThreads       = 16
)

// kdfParams are the argon2id parameters of a backup.
type kdfParams struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

// defaultKDF returns the parameters Backup uses: memory-hard at 64 MiB.
func defaultKDF() kdfParams {
	return kdfParams{memoryKiB: 64 << 10, time: 3, threads: 4}
}

// check reports whether the parameters are within the bounds Restore accepts.
func (p kdfParams) check() error {
	switch {
	case p.threads < 1 || p.threads > maxThreads:
		return fmt.Errorf("argon2id threads %d not in 1..%d", p.threads, maxThreads)
	case p.time < 1 || p.time > maxTime:
		return fmt.Errorf("argon2id time %d not in 1..%d", p.time, maxTime)
	case p.memoryKiB < minMemoryPerLane*uint32(p.threads) || p.memoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB not in %d..%d", p.memoryKiB, minMemoryPerLane*uint32(p.threads), maxMemoryKiB)
	}
	return nil
}

// deriveKey derives the AEAD key from the password.
func (p kdfParams) deriveKey(password, salt []byte) []byte {
	return argon2.IDKey(password, salt, p.time, p.memoryKiB, p.threads, keyLen)
}

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
	if err := params.check(); err != nil {
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
	out, err := seal(plaintext, password, random, params)
	if err != nil {
		return nil, fmt.Errorf("back up licensing ID: %w", err)
	}
	return out, nil
}

// seal writes the backup file around plaintext: header, ciphertext and
// checksum.
func seal(plaintext, password []byte, random io.Reader, params kdfParams) ([]byte, error) {
	out := make([]byte, headerLen, headerLen+len(plaintext)+tagLen+checksumLen)
	copy(out, backupMagic)
	out[offVersion] = backupVersion
	binary.BigEndian.PutUint32(out[offMemory:], params.memoryKiB)
	binary.BigEndian.PutUint32(out[offTime:], params.time)
	out[offThreads] = params.threads
	if _, err := io.ReadFull(random, out[offSalt:offCipherLen]); err != nil {
		return nil, fmt.Errorf("read salt and nonce: %w", err)
	}
	binary.BigEndian.PutUint32(out[offCipherLen:], uint32(len(plaintext)+tagLen))

	key := params.deriveKey(password, out[offSalt:offNonce])
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	out = append(out, aead.Seal(nil, out[offNonce:offCipherLen], plaintext, out[:headerLen])...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// sealedBackup is a backup file whose framing has been checked: what is left
// is to derive the key and open the ciphertext.
type sealedBackup struct {
	params     kdfParams
	header     []byte
	salt       []byte
	nonce      []byte
	ciphertext []byte
}

// parseBackup checks everything about a backup that needs no password: size,
// magic, version, parameter bounds, ciphertext length and checksum. Each
// failure wraps ErrDamaged. It never derives a key, so it is cheap on any
// input.
func parseBackup(data []byte) (*sealedBackup, error) {
	const minLen = headerLen + minPlaintext + tagLen + checksumLen
	const maxLen = headerLen + maxPlaintext + tagLen + checksumLen
	if len(data) < minLen {
		return nil, fmt.Errorf("%w: %d bytes is too short (at least %d)", ErrDamaged, len(data), minLen)
	}
	if len(data) > maxLen {
		return nil, fmt.Errorf("%w: %d bytes is too long (at most %d)", ErrDamaged, len(data), maxLen)
	}
	if string(data[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("%w: not a licensing ID backup (bad magic)", ErrDamaged)
	}
	if v := data[offVersion]; v != backupVersion {
		return nil, fmt.Errorf("%w: unsupported format version %d (want %d)", ErrDamaged, v, backupVersion)
	}
	params := kdfParams{
		memoryKiB: binary.BigEndian.Uint32(data[offMemory:]),
		time:      binary.BigEndian.Uint32(data[offTime:]),
		threads:   data[offThreads],
	}
	if err := params.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	cipherLen := binary.BigEndian.Uint32(data[offCipherLen:])
	if cipherLen < minPlaintext+tagLen || cipherLen > maxPlaintext+tagLen {
		return nil, fmt.Errorf("%w: ciphertext length %d out of bounds", ErrDamaged, cipherLen)
	}
	if want := headerLen + int(cipherLen) + checksumLen; len(data) != want {
		return nil, fmt.Errorf("%w: %d bytes, the header says %d", ErrDamaged, len(data), want)
	}
	body := data[:len(data)-checksumLen]
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum[:], data[len(body):]) != 1 {
		return nil, fmt.Errorf("%w: checksum does not match", ErrDamaged)
	}
	return &sealedBackup{
		params:     params,
		header:     data[:headerLen],
		salt:       data[offSalt:offNonce],
		nonce:      data[offNonce:offCipherLen],
		ciphertext: body[headerLen:],
	}, nil
}

// Restore decrypts a backup made by Backup. It returns an error wrapping
// ErrDamaged when the data is not an intact backup, and ErrWrongPassword when
// it does not open with password. It derives a key only after the whole file
// has been checked, and never panics.
func Restore(data, password []byte) (*ID, error) {
	sealed, err := parseBackup(data)
	if err != nil {
		return nil, err
	}
	key := sealed.params.deriveKey(password, sealed.salt)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("restore licensing ID: %w", err)
	}
	plaintext, err := aead.Open(nil, sealed.nonce, sealed.ciphertext, sealed.header)
	if err != nil {
		return nil, ErrWrongPassword
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
