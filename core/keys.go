package core

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// KeyType says whether a first-authentication key onboards one device or
// many.
type KeyType uint8

// Key types. The zero KeyType matches any type in a KeyFilter.
const (
	KeyOneTime KeyType = iota + 1 // onboards exactly one device, ever
	KeyMass                       // reusable, for mass deployment
)

var keyTypeNames = [...]string{KeyOneTime: "ONE_TIME", KeyMass: "MASS"}

func (t KeyType) valid() bool { return t == KeyOneTime || t == KeyMass }

func (t KeyType) String() string {
	if int(t) < len(keyTypeNames) {
		return keyTypeNames[t]
	}
	return fmt.Sprintf("KeyType(%d)", uint8(t))
}

// words names the type in a sentence: "one-time" or "mass".
func (t KeyType) words() string { return strings.ToLower(strings.ReplaceAll(t.String(), "_", "-")) }

// ParseKeyType reads ONE_TIME or MASS; the empty string is the zero type.
func ParseKeyType(s string) (KeyType, error) {
	for t, name := range keyTypeNames {
		if s == name {
			return KeyType(t), nil
		}
	}
	return 0, fmt.Errorf("%w: key type %q (want ONE_TIME or MASS)", ErrInvalidKey, s)
}

// MarshalText writes the type's name.
func (t KeyType) MarshalText() ([]byte, error) {
	if int(t) >= len(keyTypeNames) {
		return nil, fmt.Errorf("%w: key type %d", ErrInvalidKey, uint8(t))
	}
	return []byte(keyTypeNames[t]), nil
}

// UnmarshalText reads a type's name.
func (t *KeyType) UnmarshalText(b []byte) error {
	p, err := ParseKeyType(string(b))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// KeyState is where a first-authentication key stands.
type KeyState uint8

// Key states. The zero KeyState matches any state in a KeyFilter.
const (
	KeyActive   KeyState = iota + 1 // onboards devices
	KeyInactive                     // refused until activated again
	KeyUsed                         // a one-time key that onboarded its device
)

var keyStateNames = [...]string{KeyActive: "ACTIVE", KeyInactive: "INACTIVE", KeyUsed: "USED"}

func (st KeyState) String() string {
	if int(st) < len(keyStateNames) {
		return keyStateNames[st]
	}
	return fmt.Sprintf("KeyState(%d)", uint8(st))
}

// ParseKeyState reads ACTIVE, INACTIVE or USED; the empty string is the
// zero state.
func ParseKeyState(s string) (KeyState, error) {
	for st, name := range keyStateNames {
		if s == name {
			return KeyState(st), nil
		}
	}
	return 0, fmt.Errorf("%w: key state %q (want ACTIVE, INACTIVE or USED)", ErrInvalidKey, s)
}

// MarshalText writes the state's name.
func (st KeyState) MarshalText() ([]byte, error) {
	if int(st) >= len(keyStateNames) {
		return nil, fmt.Errorf("%w: key state %d", ErrInvalidKey, uint8(st))
	}
	return []byte(keyStateNames[st]), nil
}

// UnmarshalText reads a state's name.
func (st *KeyState) UnmarshalText(b []byte) error {
	p, err := ParseKeyState(string(b))
	if err != nil {
		return err
	}
	*st = p
	return nil
}

// Limits on first-authentication keys, device credentials and the client
// key.
const (
	MaxKeyIDLen          = 64
	MinKeySecretLen      = 8
	MaxKeySecretLen      = 128
	MaxKeyDescriptionLen = 256
	MaxKeysPerCommand    = 10_000
	MaxKeys              = 1_000_000
	MaxDevicePublicKey   = 1024
	MaxClientKeyLen      = 4096
)

// NewKey is a key to create. ID and Secret are made outside apply (at
// random, or the secret typed by an administrator for a mass key). For,
// allowed on a one-time key only, binds the key to one device: onboarding
// any other device with it is refused (ErrKeyNotForDevice), so a copy of
// the secret seen on its way to the device onboards nothing else.
type NewKey struct {
	ID          string        `json:"id"`
	Secret      string        `json:"secret"`
	Description string        `json:"description,omitempty"`
	For         hostid.HostID `json:"for,omitzero"`
}

// CreateKeys adds first-authentication keys of one type, active. It is
// refused whole if an ID is taken or a secret equals that of any key:
// no two keys share a secret.
type CreateKeys struct {
	KeyType KeyType  `json:"keyType"`
	Keys    []NewKey `json:"keys"`
}

// SetKeyActive activates or deactivates a key. A used one-time key stays
// used.
type SetKeyActive struct {
	ID     string `json:"id"`
	Active bool   `json:"active"`
}

// SetKeyDescription changes a key's description.
type SetKeyDescription struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

// DeleteKey removes a key; onboarding with its secret is then refused as
// unknown.
type DeleteKey struct {
	ID string `json:"id"`
}

// Onboard records a new device that presents a first-authentication key's
// secret and its own public key (DER SubjectPublicKeyInfo, parsed by the
// transport), which becomes its credential. The decision is taken in apply,
// so a one-time key onboards exactly one device however many race for it.
// A device that has a credential is refused (ErrAlreadyOnboarded), unless
// it repeats its own onboarding (the same one-time key, or a mass key with
// the same public key): otherwise whoever holds a mass key could take over
// any onboarded device by its hostid. Address is where the
// device connected from, for the audit log.
type Onboard struct {
	Device    DeviceInfo `json:"device"`
	Secret    string     `json:"secret"`
	PublicKey []byte     `json:"publicKey"`
	Address   string     `json:"address,omitempty"`
}

// SetClientKey installs the client key: DER bytes whose form (a 2048-bit
// RSA public key) the transport checks.
type SetClientKey struct {
	DER []byte `json:"der"`
}

func (*CreateKeys) Type() string        { return "createKeys" }
func (*SetKeyActive) Type() string      { return "setKeyActive" }
func (*SetKeyDescription) Type() string { return "setKeyDescription" }
func (*DeleteKey) Type() string         { return "deleteKey" }
func (*Onboard) Type() string           { return "onboard" }
func (*SetClientKey) Type() string      { return "setClientKey" }

func (c *CreateKeys) validate() error {
	if !c.KeyType.valid() {
		return fmt.Errorf("%w: key type %d", ErrInvalidKey, uint8(c.KeyType))
	}
	if len(c.Keys) == 0 || len(c.Keys) > MaxKeysPerCommand {
		return fmt.Errorf("%w: %d keys, want 1 to %d", ErrInvalidKey, len(c.Keys), MaxKeysPerCommand)
	}
	ids := make(map[string]bool, len(c.Keys))
	secrets := make(map[string]bool, len(c.Keys))
	for _, k := range c.Keys {
		if err := validateKeyID(k.ID); err != nil {
			return err
		}
		if err := validateKeySecret(k.Secret); err != nil {
			return fmt.Errorf("%w: key %s: %w", ErrInvalidKey, k.ID, err)
		}
		if err := validateKeyDescription(k.Description); err != nil {
			return err
		}
		if err := validateKeyFor(c.KeyType, k); err != nil {
			return err
		}
		if ids[k.ID] {
			return fmt.Errorf("%w: key id %s appears twice", ErrInvalidKey, k.ID)
		}
		if secrets[k.Secret] {
			return fmt.Errorf("%w: two new keys share a secret", ErrDuplicateKeySecret)
		}
		ids[k.ID], secrets[k.Secret] = true, true
	}
	return nil
}

// validateKeyFor checks the device a new key is bound to: none, or a
// valid hostid on a one-time key.
func validateKeyFor(t KeyType, k NewKey) error {
	if k.For == (hostid.HostID{}) {
		return nil
	}
	if t != KeyOneTime {
		return fmt.Errorf("%w: key %s: only a one-time key can be bound to a device", ErrInvalidKey, k.ID)
	}
	if id, err := hostid.New(k.For.Value, k.For.Type); err != nil || id != k.For {
		return fmt.Errorf("%w: key %s is bound to an invalid device %q", ErrInvalidKey, k.ID, k.For.Value)
	}
	return nil
}

func (c *SetKeyActive) validate() error { return validateKeyID(c.ID) }
func (c *DeleteKey) validate() error    { return validateKeyID(c.ID) }

func (c *SetKeyDescription) validate() error {
	if err := validateKeyID(c.ID); err != nil {
		return err
	}
	return validateKeyDescription(c.Description)
}

func (c *Onboard) validate() error {
	if err := c.Device.validate(); err != nil {
		return err
	}
	if err := validateKeySecret(c.Secret); err != nil {
		// No key has such a secret.
		return fmt.Errorf("%w: %w", ErrUnknownKey, err)
	}
	if len(c.PublicKey) == 0 || len(c.PublicKey) > MaxDevicePublicKey {
		return fmt.Errorf("%w: public key of %d bytes, want 1 to %d", ErrInvalidDevice, len(c.PublicKey), MaxDevicePublicKey)
	}
	return validateLabel("address", c.Address, maxActorLen)
}

func (c *SetClientKey) validate() error {
	if len(c.DER) == 0 || len(c.DER) > MaxClientKeyLen {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidClientKey, len(c.DER), MaxClientKeyLen)
	}
	return nil
}

// validateKeyID accepts 1..64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.
func validateKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("%w: key id must have 1 to %d characters", ErrInvalidKey, MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: key id %q may only hold letters, digits and . _ -", ErrInvalidKey, id)
		}
	}
	return nil
}

// validateKeySecret accepts 8..128 bytes of printable ASCII that neither
// start nor end with a space. The error never shows the secret.
func validateKeySecret(secret string) error {
	if len(secret) < MinKeySecretLen || len(secret) > MaxKeySecretLen {
		return fmt.Errorf("secret must have %d to %d characters", MinKeySecretLen, MaxKeySecretLen)
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c < ' ' || c >= 0x7f {
			return fmt.Errorf("secret may only hold printable ASCII characters")
		}
	}
	if secret[0] == ' ' || secret[len(secret)-1] == ' ' {
		return fmt.Errorf("secret must not start or end with a space")
	}
	return nil
}

func validateKeyDescription(d string) error {
	if err := validateLabel("key description", d, MaxKeyDescriptionLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return nil
}

// firstAuthKey is a first-authentication key as the state keeps it.
type firstAuthKey struct {
	id          string
	typ         KeyType
	secret      string
	description string
	active      bool
	created     time.Time
	// forDevice, when not zero, is the only device the key onboards.
	forDevice hostid.HostID
	// usedBy and usedAt name the device a one-time key onboarded, or the
	// last device a mass key onboarded; uses counts onboardings.
	usedBy hostid.HostID
	usedAt time.Time
	uses   uint64
}

func (k *firstAuthKey) state() KeyState {
	switch {
	case k.typ == KeyOneTime && k.uses > 0:
		return KeyUsed
	case k.active:
		return KeyActive
	}
	return KeyInactive
}

// KeySummary is a row of the Keys view. It carries the secret; the
// transport shows it only to those who may see it.
type KeySummary struct {
	ID          string        `json:"id"`
	Type        KeyType       `json:"type"`
	Secret      string        `json:"secret"`
	Description string        `json:"description,omitempty"`
	State       KeyState      `json:"state"`
	Created     time.Time     `json:"created"`
	For         hostid.HostID `json:"for,omitzero"`
	UsedBy      hostid.HostID `json:"usedBy,omitzero"`
	UsedAt      time.Time     `json:"usedAt,omitzero"`
	Uses        uint64        `json:"uses"`
}

func (k *firstAuthKey) summary() KeySummary {
	return KeySummary{ID: k.id, Type: k.typ, Secret: k.secret, Description: k.description, State: k.state(),
		Created: k.created, For: k.forDevice, UsedBy: k.usedBy, UsedAt: k.usedAt, Uses: k.uses}
}

// KeyFilter selects keys by type and state; zero fields match any.
type KeyFilter struct {
	Type  KeyType
	State KeyState
}

func (s *State) key(id string) (*firstAuthKey, error) {
	k := s.keys[id]
	if k == nil {
		return nil, fmt.Errorf("%w %s", ErrUnknownKey, id)
	}
	return k, nil
}

func (s *State) createKeys(c *CreateKeys) error {
	if len(s.keys)+len(c.Keys) > MaxKeys {
		return fmt.Errorf("%w: the server holds %d keys, at most %d", ErrInvalidKey, len(s.keys), MaxKeys)
	}
	for _, nk := range c.Keys {
		if _, ok := s.keys[nk.ID]; ok {
			return fmt.Errorf("%w: %s", ErrKeyExists, nk.ID)
		}
		if _, ok := s.keyBySecret[nk.Secret]; ok {
			return fmt.Errorf("%w (new key %s)", ErrDuplicateKeySecret, nk.ID)
		}
	}
	for _, nk := range c.Keys {
		k := &firstAuthKey{id: nk.ID, typ: c.KeyType, secret: nk.Secret, description: nk.Description, active: true,
			created: s.now, forDevice: nk.For}
		s.keys[k.id] = k
		s.keyBySecret[k.secret] = k
	}
	return nil
}

func (s *State) setKeyActive(c *SetKeyActive) error {
	k, err := s.key(c.ID)
	if err != nil {
		return err
	}
	if k.state() == KeyUsed {
		return fmt.Errorf("%w: %s onboarded %s", ErrKeyUsed, k.id, k.usedBy)
	}
	if k.active == c.Active {
		s.noChange = true
		return nil
	}
	k.active = c.Active
	return nil
}

func (s *State) setKeyDescription(c *SetKeyDescription) error {
	k, err := s.key(c.ID)
	if err != nil {
		return err
	}
	if k.description == c.Description {
		s.noChange = true
		return nil
	}
	k.description = c.Description
	return nil
}

func (s *State) deleteKey(c *DeleteKey) error {
	k, err := s.key(c.ID)
	if err != nil {
		return err
	}
	delete(s.keys, k.id)
	delete(s.keyBySecret, k.secret)
	return nil
}

// onboard finds the key by its secret, records the device with its public
// key as its credential, counts the key's use and writes an audit record.
// A device that onboarded with a one-time key and asks again with the same
// key and the same public key (a retry whose answer was lost) is told it
// is onboarded, and nothing changes.
func (s *State) onboard(c *Onboard) (Result, error) {
	k := s.keyBySecret[c.Secret]
	if k == nil {
		return Result{}, fmt.Errorf("%w: no key has this secret", ErrUnknownKey)
	}
	d := s.devices[c.Device.ID]
	if k.state() == KeyUsed {
		if k.usedBy == c.Device.ID && d != nil && bytes.Equal(d.credential, c.PublicKey) {
			s.noChange = true
			return Result{Onboarded: d.info.ID, Conn: s.connect(d)}, nil
		}
		return Result{}, fmt.Errorf("%w: key %s", ErrKeyUsed, k.id)
	}
	if !k.active {
		return Result{}, fmt.Errorf("%w: key %s", ErrKeyInactive, k.id)
	}
	if k.forDevice != (hostid.HostID{}) && k.forDevice != c.Device.ID {
		return Result{}, fmt.Errorf("%w: key %s is for %s", ErrKeyNotForDevice, k.id, k.forDevice)
	}
	if d != nil && d.credential != nil {
		if k.typ == KeyMass && bytes.Equal(d.credential, c.PublicKey) {
			s.noChange = true
			return Result{Onboarded: d.info.ID, Conn: s.connect(d)}, nil
		}
		return Result{}, fmt.Errorf("%w: %s has a credential; an administrator must drop the device before it onboards with another key", ErrAlreadyOnboarded, d.info.ID)
	}
	d, err := s.hello(&Hello{Device: c.Device})
	if err != nil {
		return Result{}, err
	}
	d.credential = bytes.Clone(c.PublicKey)
	k.uses++
	k.usedBy, k.usedAt = d.info.ID, s.now
	s.appendAudit("device:"+d.info.ID.String(), c.Address, c.Type(),
		fmt.Sprintf("onboarded device %s with %s key %s", d.info.ID, k.typ.words(), k.id))
	return Result{Onboarded: d.info.ID, Conn: s.connect(d)}, nil
}

func (s *State) setClientKey(c *SetClientKey) {
	if bytes.Equal(s.clientKey, c.DER) {
		s.noChange = true
		return
	}
	s.clientKey = bytes.Clone(c.DER)
}

// Keys lists the first-authentication keys the filter selects, oldest
// first (by ID among keys created together).
func (s *State) Keys(filter KeyFilter) []KeySummary {
	out := []KeySummary{}
	for _, k := range s.keys {
		if filter.Type != 0 && k.typ != filter.Type || filter.State != 0 && k.state() != filter.State {
			continue
		}
		out = append(out, k.summary())
	}
	slices.SortFunc(out, func(a, b KeySummary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Key returns one first-authentication key.
func (s *State) Key(id string) (KeySummary, error) {
	k, err := s.key(id)
	if err != nil {
		return KeySummary{}, err
	}
	return k.summary(), nil
}

// DeviceCredential returns a copy of the public key an onboarded device
// authenticates with, and whether it has one.
func (s *State) DeviceCredential(id hostid.HostID) ([]byte, bool) {
	d := s.deviceByID(id)
	if d == nil || d.credential == nil {
		return nil, false
	}
	return bytes.Clone(d.credential), true
}

// RequireOnboarding reports the security.requireOnboarding policy: whether
// devices without a credential are refused checkouts.
func (s *State) RequireOnboarding() bool { return s.policy.requireOnboarding }

// ClientKey returns a copy of the client key's DER bytes, or nil.
func (s *State) ClientKey() []byte { return bytes.Clone(s.clientKey) }

// keysDetail says what a key command changed, for the audit log. It names
// keys by ID, never by secret.
func keysDetail(c Command) (string, bool) {
	switch c := c.(type) {
	case *CreateKeys:
		kind := c.KeyType.words()
		if len(c.Keys) == 1 {
			return fmt.Sprintf("created %s key %s", kind, c.Keys[0].ID), true
		}
		return fmt.Sprintf("created %d %s keys (%s … %s)", len(c.Keys), kind, c.Keys[0].ID, c.Keys[len(c.Keys)-1].ID), true
	case *SetKeyActive:
		if c.Active {
			return "activated key " + c.ID, true
		}
		return "deactivated key " + c.ID, true
	case *SetKeyDescription:
		return fmt.Sprintf("set the description of key %s to %q", c.ID, c.Description), true
	case *DeleteKey:
		return "deleted key " + c.ID, true
	case *SetClientKey:
		sum := sha256.Sum256(c.DER)
		return fmt.Sprintf("set the client key (%d bytes, SHA-256 %s)", len(c.DER), hex.EncodeToString(sum[:])), true
	}
	return "", false
}
