package core

import "errors"

// Sentinel errors that callers branch on with errors.Is. Every refused command
// wraps one of them with the detail of what was wrong; a refused command
// changes nothing.
var (
	ErrInvalidCommand    = errors.New("invalid command")
	ErrUnknownCommand    = errors.New("unknown command type")
	ErrInvalidRequest    = errors.New("invalid request id")
	ErrInvalidFeature    = errors.New("invalid feature line")
	ErrInvalidCount      = errors.New("invalid count")
	ErrUnknownFeature    = errors.New("unknown feature")
	ErrUnknownDevice     = errors.New("unknown device")
	ErrInvalidDevice     = errors.New("invalid device")
	ErrStaleRights       = errors.New("rights are not newer than those loaded")
	ErrUnknownRights     = errors.New("unknown rights source")
	ErrInvalidModel      = errors.New("invalid license model")
	ErrOverAllocated     = errors.New("model allocates more than the rights hold")
	ErrModelExclusive    = errors.New("reservations and a license model cannot coexist")
	ErrInvalidReserve    = errors.New("invalid reservation")
	ErrUnknownGroup      = errors.New("unknown reservation group")
	ErrUnknownProperty   = errors.New("unknown property")
	ErrInvalidProperty   = errors.New("invalid property value")
	ErrPropertyLocked    = errors.New("property is locked by the producer")
	ErrDropNotAllowed    = errors.New("dropping devices is not allowed (server.allowDeviceDrop is false)")
	ErrInvalidSnapshot   = errors.New("invalid snapshot")
	ErrConflictingLock   = errors.New("conflicting producer lock")
	ErrUnknownFeatureVer = errors.New("unknown feature version")

	ErrUnknownUser        = errors.New("unknown user")
	ErrUserExists         = errors.New("user already exists")
	ErrInvalidUser        = errors.New("invalid user")
	ErrLastAdmin          = errors.New("the last user with the ADMIN role cannot be removed or lose it")
	ErrAuditTampered      = errors.New("audit log does not verify")
	ErrInvalidKey         = errors.New("invalid first-authentication key")
	ErrUnknownKey         = errors.New("unknown first-authentication key")
	ErrKeyExists          = errors.New("first-authentication key already exists")
	ErrDuplicateKeySecret = errors.New("another first-authentication key has this secret")
	ErrKeyInactive        = errors.New("first-authentication key is inactive")
	ErrAlreadyOnboarded   = errors.New("device is already onboarded")
	ErrInvalidLicensingID = errors.New("invalid licensing ID")
	ErrKeyUsed            = errors.New("one-time key is already used")
	ErrKeyNotForDevice    = errors.New("one-time key is bound to another device")
	ErrInvalidClientKey   = errors.New("invalid client key")

	ErrInvalidClusterCA = errors.New("invalid cluster CA")
	ErrClusterCAExists  = errors.New("another cluster CA is already set")
	ErrInvalidJoinToken = errors.New("invalid join token")
	ErrUnknownJoinToken = errors.New("unknown join token")
	ErrJoinTokenExists  = errors.New("join token already exists")
	ErrJoinTokenExpired = errors.New("join token has expired")
	ErrJoinTokenUsed    = errors.New("join token already admitted another node")
	ErrJoinLevel        = errors.New("node's release is older than the cluster's state level")

	ErrSyncOutOfOrder    = errors.New("capability response does not answer the pending capability request")
	ErrSyncReplay        = errors.New("capability response is not newer than the last one applied")
	ErrInvalidActivation = errors.New("invalid activation request")
	ErrInvalidUsage      = errors.New("invalid usage window")

	ErrSuperseded   = errors.New("request of a superseded device connection")
	ErrInvalidLevel = errors.New("invalid state level")
)
