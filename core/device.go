package core

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/version"
)

// DeviceType says whether a device is a physical machine or a virtual one.
type DeviceType uint8

// Device types.
const (
	DeviceUnknown DeviceType = iota
	DevicePhysical
	DeviceVirtual
)

var deviceTypeNames = [...]string{DeviceUnknown: "UNKNOWN", DevicePhysical: "PHYSICAL", DeviceVirtual: "VIRTUAL"}

func (t DeviceType) String() string {
	if int(t) < len(deviceTypeNames) {
		return deviceTypeNames[t]
	}
	return fmt.Sprintf("DeviceType(%d)", uint8(t))
}

// ParseDeviceType reads PHYSICAL, VIRTUAL or UNKNOWN.
func ParseDeviceType(s string) (DeviceType, error) {
	for t, name := range deviceTypeNames {
		if s == name {
			return DeviceType(t), nil
		}
	}
	return 0, fmt.Errorf("%w: device type %q (want PHYSICAL, VIRTUAL or UNKNOWN)", ErrInvalidDevice, s)
}

// MarshalText writes the type's name.
func (t DeviceType) MarshalText() ([]byte, error) {
	if int(t) >= len(deviceTypeNames) {
		return nil, fmt.Errorf("%w: device type %d", ErrInvalidDevice, uint8(t))
	}
	return []byte(deviceTypeNames[t]), nil
}

// UnmarshalText reads a type's name.
func (t *DeviceType) UnmarshalText(b []byte) error {
	p, err := ParseDeviceType(string(b))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// Limits on what a device may say about itself.
const (
	MaxHostIDs       = 16
	MaxAttributes    = 64
	maxAttrKeyLen    = 64
	maxAttrValueLen  = 256
	maxAliasLen      = 128
	maxHostnameLen   = 253
	maxDeviceLeases  = 1024
	maxReservedPools = 100_000
)

// DeviceInfo is what a device says about itself in its hello. ID is the
// hostid it is known by; HostIDs lists all of its identities, ID among them.
type DeviceInfo struct {
	ID         hostid.HostID     `json:"id"`
	HostIDs    []hostid.HostID   `json:"hostIds,omitempty"`
	Type       DeviceType        `json:"type"`
	Alias      string            `json:"alias,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	User       string            `json:"user,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// validate checks a hello and puts its hostids in canonical form.
func (d *DeviceInfo) validate() error {
	id, err := hostid.New(d.ID.Value, d.ID.Type)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
	}
	d.ID = id
	if len(d.HostIDs) > MaxHostIDs {
		return fmt.Errorf("%w: %d hostids, at most %d", ErrInvalidDevice, len(d.HostIDs), MaxHostIDs)
	}
	seen := map[hostid.HostID]bool{id: true}
	ids := []hostid.HostID{id}
	for _, h := range d.HostIDs {
		c, err := hostid.New(h.Value, h.Type)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
		}
		if !seen[c] {
			seen[c] = true
			ids = append(ids, c)
		}
	}
	if len(ids) > MaxHostIDs {
		return fmt.Errorf("%w: %d hostids, at most %d", ErrInvalidDevice, len(ids), MaxHostIDs)
	}
	d.HostIDs = ids
	if int(d.Type) >= len(deviceTypeNames) {
		return fmt.Errorf("%w: device type %d", ErrInvalidDevice, uint8(d.Type))
	}
	for what, s := range map[string]string{"alias": d.Alias, "host name": d.Hostname, "user": d.User} {
		limit := maxAliasLen
		if what == "host name" {
			limit = maxHostnameLen
		}
		if err := validateLabel(what, s, limit); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
		}
	}
	if len(d.Attributes) > MaxAttributes {
		return fmt.Errorf("%w: %d attributes, at most %d", ErrInvalidDevice, len(d.Attributes), MaxAttributes)
	}
	for k, v := range d.Attributes {
		if k == "" {
			return fmt.Errorf("%w: empty attribute name", ErrInvalidDevice)
		}
		if err := validateLabel("attribute name", k, maxAttrKeyLen); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
		}
		if err := validateLabel("attribute "+k, v, maxAttrValueLen); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidDevice, err)
		}
	}
	if len(d.Attributes) == 0 {
		d.Attributes = nil
	}
	return nil
}

// device is a known device and the leases it holds.
type device struct {
	info     DeviceInfo
	lastSeen time.Time
	leases   []*lease
	// pools lists the pool indexes the device draws from, in order: its
	// reservation then the default pool, its model pool, or the default
	// pool. Empty means the model denies it.
	pools []int
	// modelDeny records that the license model denies this device.
	modelDeny bool
	// credential is the public key (DER SubjectPublicKeyInfo) the device
	// onboarded with; nil when it has not onboarded.
	credential []byte
	// conn numbers the device's latest connection (see Level); 0 before
	// level 2. asked says which connection last asked for each feature.
	conn  uint64
	asked []asked
}

func (d *device) findLease(feature string, want version.Version) *lease {
	for _, l := range d.leases {
		if l.feature == feature && l.version == want {
			return l
		}
	}
	return nil
}

func (d *device) removeLease(l *lease) {
	for i, x := range d.leases {
		if x == l {
			last := len(d.leases) - 1
			d.leases[i] = d.leases[last]
			d.leases[last] = nil
			d.leases = d.leases[:last]
			return
		}
	}
}

// modelDevice is the device as the license model's rules see it.
func (d *device) modelDevice() *model.Device {
	return &model.Device{
		HostIDs:    d.info.HostIDs,
		Hostname:   d.info.Hostname,
		HostType:   d.info.Type.String(),
		User:       d.info.User,
		Attributes: d.info.Attributes,
	}
}
