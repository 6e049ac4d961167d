package licensingid

import (
	"io"

	"github.com/tallyhq/tally/core/sealed"
)

// The layout and bounds of the sealed format, by the names the tests use.
const (
	headerLen    = sealed.HeaderLen
	checksumLen  = sealed.ChecksumLen
	tagLen       = sealed.TagLen
	nonceLen     = sealed.NonceLen
	offVersion   = sealed.OffVersion
	offMemory    = sealed.OffMemory
	offTime      = sealed.OffTime
	offThreads   = sealed.OffThreads
	offSalt      = sealed.OffSalt
	offNonce     = sealed.OffNonce
	offCipherLen = sealed.OffCipherLen
	maxMemoryKiB = sealed.MaxMemoryKiB
	maxTime      = sealed.MaxTime
	maxThreads   = sealed.MaxThreads
)

// parseBackup checks everything about a backup that needs no password
// (sealed.Format.Parse); each failure wraps ErrDamaged.
func parseBackup(data []byte) (*sealed.File, error) { return idFormat.Parse(data) }

// seal writes the backup file around plaintext.
func seal(plaintext, password []byte, random io.Reader, params kdfParams) ([]byte, error) {
	return idFormat.Seal(plaintext, password, random, params)
}
