// Package password owns the administrator password rules: the policy a new
// password must meet, and how passwords are hashed and verified.
//
// Hashes are argon2id (version 19) in the PHC string format,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// where m is the memory in KiB, t the number of passes, p the number of lanes,
// and salt (16 bytes) and hash (32 bytes) are standard base64 without padding.
// Hash always writes these parameters: 19 MiB, 2 passes, 1 lane, the first
// of the equivalent argon2id settings OWASP's password storage guidance
// lists, chosen for the least memory an appliance must hold for a login.
// Each derivation gives its memory back to the system at once, so that the
// server's resident memory does not stay at a login's peak. Verify accepts other parameters so
// that they can be raised later, but only within bounds (memory at most 1
// GiB and at least 8 KiB a lane, time and lanes 1 to 16, salt 8 to 64 bytes,
// hash 16 to 64 bytes), so that a damaged or planted hash cannot make a login
// exhaust the server. Verify accepts only the canonical form Hash writes:
// no leading zeros, no padding, parameters in the order m, t, p.
//
// The policy (Check) asks for 8 to 256 bytes that are not all white space;
// it is applied by callers when a password is set, not by Hash.
package password

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"

	"github.com/tallyhq/tally/core/sealed"
)

// Policy bounds on a password, in bytes.
const (
	MinLength = 8
	MaxLength = 256
)

var (
	// ErrMalformedHash is returned by Verify when the stored hash is not an
	// argon2id PHC string within bounds.
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrWeakPassword is returned by Check when a password does not meet the
	// policy.
	ErrWeakPassword = errors.New("password does not meet the policy")
)

// Check reports whether password meets the policy: 8 to 256 bytes and not
// only white space. The error wraps ErrWeakPassword and says what is wrong.
func Check(password string) error {
	switch {
	case len(password) < MinLength:
		return fmt.Errorf("%w: it has %d bytes, at least %d are needed", ErrWeakPassword, len(password), MinLength)
	case len(password) > MaxLength:
		return fmt.Errorf("%w: it has %d bytes, at most %d are allowed", ErrWeakPassword, len(password), MaxLength)
	case strings.TrimFunc(password, unicode.IsSpace) == "":
		return fmt.Errorf("%w: it is only white space", ErrWeakPassword)
	}
	return nil
}

// params are the argon2id parameters and sizes of a hash.
type params struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
	saltLen   int
	keyLen    int
}

// defaultParams returns the parameters Hash uses.
func defaultParams() params {
	return params{memoryKiB: 19 << 10, time: 2, threads: 1, saltLen: 16, keyLen: 32}
}

// Bounds on what Verify accepts.
const (
	argonVersion = argon2.Version // 19
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
	// maxHashString bounds the PHC string before it is split.
	maxHashString = 256
)

// Hash returns the PHC string of password hashed with argon2id at 19 MiB, 2
// passes and 1 lane, with a 16-byte salt from random.
func Hash(password string, random io.Reader) (string, error) {
	return hash(password, random, defaultParams())
}

// hash is Hash with the parameters given, so that tests can keep the key
// derivation cheap.
func hash(password string, random io.Reader, p params) (string, error) {
	if random == nil {
		return "", errors.New("hash password: no source of randomness")
	}
	salt := make([]byte, p.saltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	phc := phcHash{params: p, salt: salt}
	if err := phc.check(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	phc.key = phc.derive(password)
	return phc.String(), nil
}

// Verify reports whether password matches hash, comparing in constant time.
// A hash that is not a well-formed argon2id PHC string within bounds gives an
// error wrapping ErrMalformedHash.
func Verify(hash, password string) (bool, error) {
	phc, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	key := phc.derive(password)
	return subtle.ConstantTimeCompare(key, phc.key) == 1, nil
}

// phcHash is a parsed argon2id PHC string.
type phcHash struct {
	params
	salt []byte
	key  []byte
}

// derive hashes password with the salt and parameters of h. The memory of
// the derivation is garbage once it returns. Beside a small live heap, as
// on an idle appliance, it would keep the process that much bigger until
// later collections, so it is given back to the system at once; beside a
// large one (many connected devices) it is a small part, the collector's
// pacing absorbs it, and a forced full collection would cost more than it
// frees.
func (h *phcHash) derive(password string) []byte {
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memoryKiB, h.threads, uint32(h.keyLen))
	if mem := uint64(h.memoryKiB) << 10; mem >= 1<<20 && mem*4 >= liveHeap() {
		debug.FreeOSMemory()
	}
	return key
}

// liveHeap returns the bytes of heap the last collection found live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// check reports whether the parameters and sizes are within bounds: the
// argon2id parameters within those every sealed file of Tally's is held
// to (sealed.KDF.Check), salt and hash within their own.
func (h *phcHash) check() error {
	if err := (sealed.KDF{MemoryKiB: h.memoryKiB, Time: h.time, Threads: h.threads}).Check(); err != nil {
		return err
	}
	switch {
	case h.saltLen < minSaltLen || h.saltLen > maxSaltLen:
		return fmt.Errorf("salt of %d bytes not in %d..%d", h.saltLen, minSaltLen, maxSaltLen)
	case h.keyLen < minKeyLen || h.keyLen > maxKeyLen:
		return fmt.Errorf("hash of %d bytes not in %d..%d", h.keyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// String returns the PHC string of h.
func (h *phcHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argonVersion, h.memoryKiB, h.time, h.threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// b64 is the PHC encoding: standard alphabet, no padding, no stray bits.
var b64 = base64.RawStdEncoding.Strict()

// parsePHC parses and bounds an argon2id PHC string without hashing
// anything, so it is cheap on any input. Errors wrap ErrMalformedHash.
func parsePHC(s string) (*phcHash, error) {
	if len(s) > maxHashString {
		return nil, fmt.Errorf("%w: %d characters is too long", ErrMalformedHash, len(s))
	}
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=…$m=…,t=…,p=…$salt$hash", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformedHash, fields[1])
	}
	version, ok := strings.CutPrefix(fields[2], "v=")
	if !ok || version != strconv.Itoa(argonVersion) {
		return nil, fmt.Errorf("%w: version %q is not v=%d", ErrMalformedHash, fields[2], argonVersion)
	}
	var h phcHash
	var err error
	kv := strings.Split(fields[3], ",")
	if len(kv) != 3 {
		return nil, fmt.Errorf("%w: parameters %q are not m=…,t=…,p=…", ErrMalformedHash, fields[3])
	}
	if h.memoryKiB, err = parseParam(kv[0], "m=", 32); err != nil {
		return nil, err
	}
	if h.time, err = parseParam(kv[1], "t=", 32); err != nil {
		return nil, err
	}
	threads, err := parseParam(kv[2], "p=", 8)
	if err != nil {
		return nil, err
	}
	h.threads = uint8(threads)
	if h.salt, err = b64.DecodeString(fields[4]); err != nil {
		return nil, fmt.Errorf("%w: salt: %w", ErrMalformedHash, err)
	}
	if h.key, err = b64.DecodeString(fields[5]); err != nil {
		return nil, fmt.Errorf("%w: hash: %w", ErrMalformedHash, err)
	}
	h.saltLen, h.keyLen = len(h.salt), len(h.key)
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	// The decoders ignore line breaks in base64; only the canonical form is
	// accepted.
	if h.String() != s {
		return nil, fmt.Errorf("%w: not in canonical form", ErrMalformedHash)
	}
	return &h, nil
}

// parseParam parses one "name=value" parameter in canonical decimal.
func parseParam(field, name string, bits int) (uint32, error) {
	value, ok := strings.CutPrefix(field, name)
	if !ok {
		return 0, fmt.Errorf("%w: parameter %q is not %s…", ErrMalformedHash, field, name)
	}
	n, err := strconv.ParseUint(value, 10, bits)
	if err != nil || strconv.FormatUint(n, 10) != value {
		return 0, fmt.Errorf("%w: parameter %q is not a decimal number", ErrMalformedHash, field)
	}
	return uint32(n), nil
}
