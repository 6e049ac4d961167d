// Package sealed is the password-encrypted file format of Tally's backups:
// the licensing ID's (package licensingid) and the database's (core). The
// key comes from the password through argon2id, whose parameters the file
// carries so that they can be raised later without breaking old files.
// Version 1, all integers big-endian:
//
//	offset  size  field
//	0       8     magic, one per kind of backup ("TALLYIDB", "TALLYDBB")
//	8       1     version, 1
//	9       4     argon2id memory in KiB
//	13      4     argon2id time (passes)
//	17      1     argon2id threads (lanes)
//	18      16    salt
//	34      24    nonce
//	58      4     ciphertext length n
//	62      n     ciphertext: XChaCha20-Poly1305 of the plaintext, with bytes
//	              0..61 (the header) as additional data
//	62+n    32    SHA-256 of every byte before it
//
// Open reads every length and parameter before it spends anything on them:
// memory is at most 1 GiB and at least 8 KiB per lane, time and threads are
// 1 to 16, the ciphertext within the format's bounds plus the tag, and the
// file exactly as long as its header says. The trailing checksum is not a
// secret; it lets Open tell a damaged file (truncated, extended, bits
// flipped) from a wrong password before running the key derivation. So the
// format's Damaged error means the file is not one as written, and its
// WrongPassword error means the file is intact but does not open with the
// password: the password is wrong, or someone who recomputed the checksum
// has tampered with the file.
package sealed

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The layout of version 1.
const (
	Version = 1

	MagicLen    = 8
	SaltLen     = 16
	KeyLen      = chacha20poly1305.KeySize
	NonceLen    = chacha20poly1305.NonceSizeX
	TagLen      = chacha20poly1305.Overhead
	ChecksumLen = sha256.Size

	OffVersion   = MagicLen
	OffMemory    = OffVersion + 1
	OffTime      = OffMemory + 4
	OffThreads   = OffTime + 4
	OffSalt      = OffThreads + 1
	OffNonce     = OffSalt + SaltLen
	OffCipherLen = OffNonce + NonceLen
	HeaderLen    = OffCipherLen + 4
)

// Bounds on the argon2id parameters a file, or a stored password hash
// (core/password), may ask for. They keep a crafted or damaged one from
// demanding more than 1 GiB or minutes of work.
const (
	MaxMemoryKiB     = 1 << 20
	MinMemoryPerLane = 8 // KiB; the argon2 minimum
	MaxTime          = 16
	MaxThreads       = 16
)

// KDF holds the argon2id parameters of a file (or of a password hash).
type KDF struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultKDF returns the parameters backups are sealed with: memory-hard
// at 64 MiB, 3 passes, 4 lanes.
func DefaultKDF() KDF { return KDF{MemoryKiB: 64 << 10, Time: 3, Threads: 4} }

// Check reports whether the parameters are within the bounds Open accepts.
func (p KDF) Check() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("argon2id threads %d not in 1..%d", p.Threads, MaxThreads)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("argon2id time %d not in 1..%d", p.Time, MaxTime)
	case p.MemoryKiB < MinMemoryPerLane*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB not in %d..%d", p.MemoryKiB, MinMemoryPerLane*uint32(p.Threads), MaxMemoryKiB)
	}
	return nil
}

func (p KDF) deriveKey(password, salt []byte) []byte {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, KeyLen)
}

// Format is one kind of sealed file: its magic, the bounds of its
// plaintext, what it is called in errors, and the errors its owner
// refuses with.
type Format struct {
	Magic                      string // MagicLen bytes
	MinPlaintext, MaxPlaintext int
	// What names the file in errors: "licensing ID backup".
	What string
	// Damaged is wrapped by every refusal of a file that is not one as
	// written; WrongPassword is returned for an intact file that does not
	// open with the password.
	Damaged, WrongPassword error
}

// Seal encrypts plaintext under password with the parameters kdf. Salt and
// nonce are drawn from random.
func (f Format) Seal(plaintext, password []byte, random io.Reader, kdf KDF) ([]byte, error) {
	if random == nil {
		return nil, errors.New("no source of randomness")
	}
	if err := kdf.Check(); err != nil {
		return nil, err
	}
	if len(plaintext) < f.MinPlaintext || len(plaintext) > f.MaxPlaintext {
		return nil, fmt.Errorf("%d bytes to seal, want %d to %d", len(plaintext), f.MinPlaintext, f.MaxPlaintext)
	}
	out := make([]byte, HeaderLen, HeaderLen+len(plaintext)+TagLen+ChecksumLen)
	copy(out, f.Magic)
	out[OffVersion] = Version
	binary.BigEndian.PutUint32(out[OffMemory:], kdf.MemoryKiB)
	binary.BigEndian.PutUint32(out[OffTime:], kdf.Time)
	out[OffThreads] = kdf.Threads
	if _, err := io.ReadFull(random, out[OffSalt:OffCipherLen]); err != nil {
		return nil, fmt.Errorf("read salt and nonce: %w", err)
	}
	binary.BigEndian.PutUint32(out[OffCipherLen:], uint32(len(plaintext)+TagLen))

	key := kdf.deriveKey(password, out[OffSalt:OffNonce])
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	out = append(out, aead.Seal(nil, out[OffNonce:OffCipherLen], plaintext, out[:HeaderLen])...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// Recognizes reports whether data starts with the format's magic.
func (f Format) Recognizes(data []byte) bool {
	return len(data) >= MagicLen && string(data[:MagicLen]) == f.Magic
}

// File is a sealed file whose framing has been checked: what is left is
// to derive the key and open the ciphertext.
type File struct {
	KDF        KDF
	header     []byte
	salt       []byte
	nonce      []byte
	ciphertext []byte
}

// Parse checks everything about a file that needs no password: size,
// magic, version, parameter bounds, ciphertext length and checksum. Each
// failure wraps f.Damaged. It never derives a key, so it is cheap on any
// input.
func (f Format) Parse(data []byte) (*File, error) {
	minLen := HeaderLen + f.MinPlaintext + TagLen + ChecksumLen
	maxLen := HeaderLen + f.MaxPlaintext + TagLen + ChecksumLen
	if len(data) < minLen {
		return nil, fmt.Errorf("%w: %d bytes is too short (at least %d)", f.Damaged, len(data), minLen)
	}
	if len(data) > maxLen {
		return nil, fmt.Errorf("%w: %d bytes is too long (at most %d)", f.Damaged, len(data), maxLen)
	}
	if !f.Recognizes(data) {
		return nil, fmt.Errorf("%w: not a %s (bad magic)", f.Damaged, f.What)
	}
	if v := data[OffVersion]; v != Version {
		return nil, fmt.Errorf("%w: unsupported format version %d (want %d)", f.Damaged, v, Version)
	}
	kdf := KDF{
		MemoryKiB: binary.BigEndian.Uint32(data[OffMemory:]),
		Time:      binary.BigEndian.Uint32(data[OffTime:]),
		Threads:   data[OffThreads],
	}
	if err := kdf.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", f.Damaged, err)
	}
	cipherLen := binary.BigEndian.Uint32(data[OffCipherLen:])
	if int64(cipherLen) < int64(f.MinPlaintext+TagLen) || int64(cipherLen) > int64(f.MaxPlaintext+TagLen) {
		return nil, fmt.Errorf("%w: ciphertext length %d out of bounds", f.Damaged, cipherLen)
	}
	if want := HeaderLen + int(cipherLen) + ChecksumLen; len(data) != want {
		return nil, fmt.Errorf("%w: %d bytes, the header says %d", f.Damaged, len(data), want)
	}
	body := data[:len(data)-ChecksumLen]
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum[:], data[len(body):]) != 1 {
		return nil, fmt.Errorf("%w: checksum does not match", f.Damaged)
	}
	return &File{
		KDF:        kdf,
		header:     data[:HeaderLen],
		salt:       data[OffSalt:OffNonce],
		nonce:      data[OffNonce:OffCipherLen],
		ciphertext: body[HeaderLen:],
	}, nil
}

// Open checks data (Parse) and decrypts it with password. It returns an
// error wrapping f.Damaged when data is not an intact file, and
// f.WrongPassword when it does not open with password. It derives a key
// only after the whole file has been checked, and never panics. The
// caller clears the plaintext when done with it.
func (f Format) Open(data, password []byte) ([]byte, error) {
	file, err := f.Parse(data)
	if err != nil {
		return nil, err
	}
	key := file.KDF.deriveKey(password, file.salt)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, file.nonce, file.ciphertext, file.header)
	if err != nil {
		return nil, f.WrongPassword
	}
	return plaintext, nil
}
