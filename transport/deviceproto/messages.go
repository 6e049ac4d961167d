package deviceproto

import (
	"encoding/json"
	"time"
)

// Protocol is the protocol name and version a device sends in its hello.
const Protocol = "tally-device/1"

// Path is where a server serves the protocol.
const Path = "/ws/device"

// Message types. A device sends hello, onboard, authenticate,
// capabilityRequest, renew, return and status; a server answers with
// welcome, onboarded, authenticated, capabilityResponse, status and error,
// and pushes leaseChanged.
const (
	TypeHello              = "hello"
	TypeWelcome            = "welcome"
	TypeOnboard            = "onboard"
	TypeOnboarded          = "onboarded"
	TypeAuthenticate       = "authenticate"
	TypeAuthenticated      = "authenticated"
	TypeCapabilityRequest  = "capabilityRequest"
	TypeCapabilityResponse = "capabilityResponse"
	TypeRenew              = "renew"
	TypeReturn             = "return"
	TypeStatus             = "status"
	TypeLeaseChanged       = "leaseChanged"
	TypeError              = "error"
)

// Limits of the protocol that both sides apply.
const (
	// MaxFeatures bounds the features of one capabilityRequest, renew or
	// return.
	MaxFeatures = 64
	// MaxHostIDs bounds the hostids of a hello.
	MaxHostIDs = 16
)

// Envelope is one message: a type, the request ID the reply echoes (0 for
// server pushes and for errors that belong to no request), and a body whose
// shape the type decides.
type Envelope struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	Body json.RawMessage `json:"body,omitempty"`
}

// HostID is one identity of a device: a value of a type (ETHERNET, UUID,
// SERIAL, STRING or USER). The server writes values in canonical form.
type HostID struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

// String writes "value (TYPE)".
func (h HostID) String() string { return h.Value + " (" + h.Type + ")" }

// Device types a hello may state.
const (
	DevicePhysical = "PHYSICAL"
	DeviceVirtual  = "VIRTUAL"
	DeviceUnknown  = "UNKNOWN"
)

// Hello opens a session. The first hostid is the device ID the server
// knows the device by; the others are further identities the license model
// may match on.
type Hello struct {
	Protocol   string            `json:"protocol"`
	HostIDs    []HostID          `json:"hostIds"`
	Alias      string            `json:"alias,omitempty"`
	DeviceType string            `json:"deviceType,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	User       string            `json:"user,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Welcome answers a hello.
type Welcome struct {
	Protocol string `json:"protocol"`
	// Node is the ID of the server node the device talks to.
	Node string `json:"node"`
	// Device is the device ID in the server's canonical form; signed
	// payloads name it.
	Device HostID `json:"device"`
	// Fingerprint is the SHA-256 of Certificate as colon-separated
	// upper-case hex pairs.
	Fingerprint string `json:"fingerprint"`
	// Certificate is the DER X.509 certificate of the licensing identity
	// whose key signs capability responses.
	Certificate []byte    `json:"certificate"`
	RenewHint   RenewHint `json:"renewHint"`
	ServerTime  time.Time `json:"serverTime"`
	Limits      Limits    `json:"limits"`
	// Challenge is ChallengeSize random bytes, one set per connection, that
	// onboard and authenticate sign (OnboardDigest, AuthDigest).
	Challenge []byte `json:"challenge"`
	// Onboarded says that the device has a credential on the server: it
	// must authenticate on this connection before its requests are served.
	Onboarded bool `json:"onboarded"`
}

// Onboard asks the server to onboard the device that said hello: Key is
// the secret of a first-authentication key, PublicKey the DER
// SubjectPublicKeyInfo of the device's own key (ECDSA P-256 or Ed25519),
// and Signature that key's signature over OnboardDigest, which proves the
// device holds it.
type Onboard struct {
	Key       string `json:"key"`
	PublicKey []byte `json:"publicKey"`
	Signature []byte `json:"signature"`
}

// Onboarded answers a successful onboard: the device is onboarded, its
// public key is its credential, and the connection is authenticated.
type Onboarded struct {
	Device HostID `json:"device"`
}

// Authenticate proves that the device holds the key it onboarded with:
// Signature is that key's signature over AuthDigest.
type Authenticate struct {
	Signature []byte `json:"signature"`
}

// Authenticated answers a successful authenticate.
type Authenticated struct {
	Device HostID `json:"device"`
}

// RenewHint tells a device the server's lease policy: leases last
// BorrowSeconds unless a request asks otherwise, and a device should renew
// after RenewPercent of a lease has passed (each grant also carries its own
// renewAt). Signed payloads are valid for ResponseLifetimeSeconds.
type RenewHint struct {
	BorrowSeconds           int64 `json:"borrowSeconds"`
	RenewPercent            int64 `json:"renewPercent"`
	ResponseLifetimeSeconds int64 `json:"responseLifetimeSeconds"`
}

// Limits are the server's limits on a connection.
type Limits struct {
	MaxMessageBytes int64   `json:"maxMessageBytes"`
	MaxRate         float64 `json:"maxRate,omitempty"`
	MaxInFlight     int     `json:"maxInFlight"`
	MaxFeatures     int     `json:"maxFeatures"`
}

// FeatureRequest asks to hold Count of a feature at Version or later. Count
// is the count the device wants to hold, not an increment: the same count
// renews, fewer returns the difference and zero returns the lease.
// BorrowSeconds asks for a lease length; zero takes the server's default.
type FeatureRequest struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Count         int64  `json:"count"`
	BorrowSeconds int64  `json:"borrowSeconds,omitempty"`
}

// CapabilityRequest is the body of capabilityRequest and of renew.
type CapabilityRequest struct {
	Features []FeatureRequest `json:"features"`
}

// FeatureRef names a feature at a version.
type FeatureRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ReturnRequest is the body of return: each feature is returned whole.
type ReturnRequest struct {
	Features []FeatureRef `json:"features"`
}

// StatusRequest is the body of a status request; it has no fields.
type StatusRequest struct{}

// Status answers a status request with the leases the server records for
// the device. It is informational and not signed.
type Status struct {
	Device HostID  `json:"device"`
	Leases []Lease `json:"leases"`
}

// Lease is a lease the device holds.
type Lease struct {
	Feature   string    `json:"feature"`
	Version   string    `json:"version"`
	Count     int64     `json:"count"`
	Overdraft int64     `json:"overdraft,omitempty"`
	Granted   time.Time `json:"granted,omitzero"`
	Expiry    time.Time `json:"expiry,omitzero"`
}

// Signed is the body of capabilityResponse and leaseChanged: a payload
// (the JSON of a Payload), the identity key's signature, and, when the
// signature covers a batch of payloads, the payload's proof of membership.
type Signed struct {
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
	Proof     *Proof `json:"proof,omitempty"`
}

// Proof places a payload in a signed batch: it is leaf Index of a Merkle
// tree of Size leaves (RFC 9162 tree hashing), and Path is the audit path
// from the leaf to the signed root, nearest sibling first.
type Proof struct {
	Index int      `json:"index"`
	Size  int      `json:"size"`
	Path  [][]byte `json:"path"`
}

// Payload events. A capabilityResponse payload has no event.
const (
	// EventLeaseChanged: the server changed leases of the device (revoked
	// when rights shrank, freed when the connection dropped); Grants hold
	// the new counts, zero for gone.
	EventLeaseChanged = "leaseChanged"
	// EventDropped: an administrator dropped the device; every lease is
	// gone and the device must say hello again.
	EventDropped = "dropped"
)

// Payload is what the server signs. RequestID is the ID of the request it
// answers, 0 for a push. It is valid from Issued until Expires.
type Payload struct {
	Device    HostID    `json:"device"`
	RequestID uint64    `json:"requestId"`
	Event     string    `json:"event,omitempty"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
	Grants    []Grant   `json:"grants"`
	Denials   []Denial  `json:"denials,omitempty"`
}

// Grant is the lease a device holds of a feature after a request. A count
// of zero means it holds none.
type Grant struct {
	Feature   string    `json:"feature"`
	Version   string    `json:"version"`
	Count     int64     `json:"count"`
	Overdraft int64     `json:"overdraft,omitempty"`
	Expiry    time.Time `json:"expiry,omitzero"`
	RenewAt   time.Time `json:"renewAt,omitzero"`
}

// Denial says that a feature was not granted as asked. Count is what was
// asked; Held is what the device still holds (its lease is unchanged).
type Denial struct {
	Feature string `json:"feature"`
	Version string `json:"version"`
	Count   int64  `json:"count"`
	Held    int64  `json:"held"`
	Reason  string `json:"reason"`
}

// Denial reasons.
const (
	DenyNoSuchFeature = "no_such_feature"
	DenyNoSuchVersion = "no_such_version"
	DenyNotActive     = "not_active"
	DenyInsufficient  = "insufficient_count"
	DenyModel         = "denied_by_model"
	// DenyNotOnboarded: security.requireOnboarding is on and the device is
	// not onboarded.
	DenyNotOnboarded = "not_onboarded"
	// DenyOther is sent for a reason this version of the protocol does not name.
	DenyOther = "denied"
)

// Error codes of the error message.
const (
	CodeMalformed           = "malformed"
	CodeUnknownType         = "unknown_type"
	CodeHelloRequired       = "hello_required"
	CodeUnsupportedProtocol = "unsupported_protocol"
	CodeDeviceMismatch      = "device_mismatch"
	CodeRateLimited         = "rate_limited"
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidDevice       = "invalid_device"
	CodeInvalidFeature      = "invalid_feature"
	CodeInvalidVersion      = "invalid_version"
	CodeInvalidCount        = "invalid_count"
	CodeUnknownDevice       = "unknown_device"
	CodeNotApplied          = "not_applied"
	CodeSuperseded          = "superseded"
	CodeShuttingDown        = "shutting_down"
	CodeInternal            = "internal"
	CodeUnknownKey          = "unknown_key"
	CodeKeyInactive         = "key_inactive"
	CodeKeyUsed             = "key_used"
	CodeKeyNotForDevice     = "key_not_for_device"
	CodeAlreadyOnboarded    = "already_onboarded"
	CodeInvalidKey          = "invalid_key"
	CodeAuthFailed          = "auth_failed"
	CodeAuthRequired        = "auth_required"
)

// Error is the body of an error message. It is also the error the Client
// returns when the server answers a request with one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return "server: " + e.Code + ": " + e.Message }
