package core

import (
	"errors"
	"fmt"
	"io"

	"github.com/tallyhq/tally/core/sealed"
)

// A database backup, the bytes of a Snapshot, is as secret as the data
// directory. SealBackup encrypts one under a password before it is stored
// away from the server, as a file of package sealed with the magic
// "TALLYDBB"; OpenBackup gives the snapshot back.

// Refusals of a sealed database backup.
var (
	ErrBackupDamaged  = errors.New("sealed database backup is damaged")
	ErrBackupPassword = errors.New("wrong password for sealed database backup")
)

// Bounds on a backup password, in bytes.
const (
	MinBackupPassword = 8
	MaxBackupPassword = 256
)

var backupFormat = sealed.Format{
	Magic:         "TALLYDBB",
	MinPlaintext:  1,
	MaxPlaintext:  maxBackupBytes,
	What:          "sealed database backup",
	Damaged:       ErrBackupDamaged,
	WrongPassword: ErrBackupPassword,
}

// SealBackup encrypts a database backup under password, with salt and
// nonce from random and the memory-hard parameters sealed.DefaultKDF.
func SealBackup(backup, password []byte, random io.Reader) ([]byte, error) {
	return sealBackup(backup, password, random, sealed.DefaultKDF())
}

func sealBackup(backup, password []byte, random io.Reader, kdf sealed.KDF) ([]byte, error) {
	if n := len(password); n < MinBackupPassword || n > MaxBackupPassword {
		return nil, fmt.Errorf("seal database backup: the password has %d bytes; want %d to %d", n, MinBackupPassword, MaxBackupPassword)
	}
	out, err := backupFormat.Seal(backup, password, random, kdf)
	if err != nil {
		return nil, fmt.Errorf("seal database backup: %w", err)
	}
	return out, nil
}

// OpenBackup decrypts what SealBackup wrote. It returns an error wrapping
// ErrBackupDamaged when data is not an intact sealed backup, and
// ErrBackupPassword when it does not open with password.
func OpenBackup(data, password []byte) ([]byte, error) {
	return backupFormat.Open(data, password)
}

// IsSealedBackup reports whether data is meant to be a sealed backup (it
// starts as one), as opposed to a snapshot as it is.
func IsSealedBackup(data []byte) bool { return backupFormat.Recognizes(data) }
