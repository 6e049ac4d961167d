package core

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// PropertyKind is the type of a property's value.
type PropertyKind uint8

// Property kinds.
const (
	KindBool PropertyKind = iota + 1
	KindInt
	KindDuration
	KindEnum
	KindString
)

func (k PropertyKind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindDuration:
		return "duration"
	case KindEnum:
		return "enum"
	case KindString:
		return "string"
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k PropertyKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// PropertyDef describes one policy setting.
type PropertyDef struct {
	Name        string       `json:"name"`
	Group       string       `json:"group"`
	Description string       `json:"description"`
	Kind        PropertyKind `json:"kind"`
	Default     string       `json:"default"`
	// Min and Max bound ints, and durations in seconds.
	Min int64 `json:"min,omitempty"`
	Max int64 `json:"max,omitempty"`
	// Values lists the allowed values of an enum.
	Values []string `json:"values,omitempty"`
}

// Property is a setting as the administrator sees it.
type Property struct {
	PropertyDef
	Value string `json:"value"`
	// Locked properties are fixed by the producer's rights and refuse changes.
	Locked bool `json:"locked"`
}

const day = 24 * 60 * 60

// propertyDefs are the policy settings, sorted by name.
var propertyDefs = []PropertyDef{
	{Name: "backoffice.connector", Group: "backoffice", Kind: KindString, Default: "",
		Description: "Connector that exchanges capability requests with the back office; empty for offline only."},
	{Name: "backoffice.pollInterval", Group: "backoffice", Kind: KindDuration, Default: "1h", Min: 60, Max: 30 * day,
		Description: "How often the leader sends a capability request to the back office."},
	{Name: "backoffice.retryInterval", Group: "backoffice", Kind: KindDuration, Default: "5m", Min: 5, Max: day,
		Description: "How long to wait before retrying a failed back-office exchange."},
	{Name: "licensing.borrowInterval", Group: "licensing", Kind: KindDuration, Default: "168h", Min: 60, Max: 3650 * day,
		Description: "How long a granted lease lasts unless renewed, when the device asks for no other."},
	{Name: "licensing.borrowIntervalMax", Group: "licensing", Kind: KindDuration, Default: "720h", Min: 60, Max: 3650 * day,
		Description: "The longest lease a device may ask for."},
	{Name: "licensing.releaseOnDisconnect", Group: "licensing", Kind: KindBool, Default: "false",
		Description: "Free a device's counts when its WebSocket closes."},
	{Name: "licensing.renewInterval", Group: "licensing", Kind: KindInt, Default: "15", Min: 1, Max: 100,
		Description: "Percent of the lease after which the device renews."},
	{Name: "licensing.responseLifetime", Group: "licensing", Kind: KindDuration, Default: "24h", Min: 60, Max: 365 * day,
		Description: "How long a signed capability response stays valid for the device."},
	{Name: "logging.format", Group: "logging", Kind: KindEnum, Default: "text", Values: []string{"text", "json"},
		Description: "Log line format."},
	{Name: "logging.level", Group: "logging", Kind: KindEnum, Default: "info", Values: []string{"debug", "info", "warn", "error"},
		Description: "Lowest level that is logged."},
	{Name: "security.enabled", Group: "security", Kind: KindBool, Default: "true",
		Description: "Require authentication for administration; when false, only loopback may administer anonymously."},
	{Name: "security.requireOnboarding", Group: "security", Kind: KindBool, Default: "false",
		Description: "Refuse checkouts from devices that have not onboarded with a first-authentication key."},
	{Name: "security.tokenDuration", Group: "security", Kind: KindDuration, Default: "1h", Min: 60, Max: 30 * day,
		Description: "How long an administrator's login token lasts."},
	{Name: "server.allowDeviceDrop", Group: "server", Kind: KindBool, Default: "true",
		Description: "Allow administrators with the DROPDEVICE role to drop devices and free their counts."},
	{Name: "server.pageSize", Group: "server", Kind: KindInt, Default: "20", Min: 1, Max: 1000,
		Description: "Rows per page in lists."},
}

func lookupProperty(name string) (*PropertyDef, bool) {
	i, ok := slices.BinarySearchFunc(propertyDefs, name, func(d PropertyDef, n string) int {
		switch {
		case d.Name < n:
			return -1
		case d.Name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return nil, false
	}
	return &propertyDefs[i], true
}

// normalize checks value against the definition and returns its canonical
// text ("1h0m0s" for "60m", "true" for "TRUE").
func (d *PropertyDef) normalize(value string) (string, error) {
	switch d.Kind {
	case KindBool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", fmt.Errorf("%w: %s wants true or false, not %q", ErrInvalidProperty, d.Name, value)
		}
		return strconv.FormatBool(b), nil
	case KindInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < d.Min || n > d.Max {
			return "", fmt.Errorf("%w: %s wants a whole number from %d to %d, not %q", ErrInvalidProperty, d.Name, d.Min, d.Max, value)
		}
		return strconv.FormatInt(n, 10), nil
	case KindDuration:
		dur, err := time.ParseDuration(value)
		if err != nil || dur < time.Duration(d.Min)*time.Second || dur > time.Duration(d.Max)*time.Second {
			return "", fmt.Errorf("%w: %s wants a duration from %s to %s (such as 90m or 168h), not %q", ErrInvalidProperty,
				d.Name, time.Duration(d.Min)*time.Second, time.Duration(d.Max)*time.Second, value)
		}
		return dur.String(), nil
	case KindEnum:
		if !slices.Contains(d.Values, value) {
			return "", fmt.Errorf("%w: %s wants one of %v, not %q", ErrInvalidProperty, d.Name, d.Values, value)
		}
		return value, nil
	default:
		if err := validateLabel(d.Name, value, 256); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidProperty, err)
		}
		return value, nil
	}
}

// policy holds the typed values of the properties the engine itself reads,
// refreshed whenever a property or lock changes, so that apply never parses.
type policy struct {
	borrow              time.Duration
	borrowMax           time.Duration
	renewPercent        int64
	releaseOnDisconnect bool
	allowDeviceDrop     bool
	requireOnboarding   bool
}

// properties are the stored settings: values the administrator set, and the
// producer's locks by rights source.
type properties struct {
	values map[string]string            // administrator's values, canonical text
	locks  map[string]map[string]string // source → property → locked value
}

// effective returns the value in force and whether the producer locked it.
func (p *properties) effective(d *PropertyDef) (string, bool) {
	for _, src := range sortedKeys(p.locks) {
		if v, ok := p.locks[src][d.Name]; ok {
			return v, true
		}
	}
	if v, ok := p.values[d.Name]; ok {
		return v, false
	}
	return d.Default, false
}

func (p *properties) policy() policy {
	get := func(name string) string {
		d, _ := lookupProperty(name)
		v, _ := p.effective(d)
		return v
	}
	dur := func(name string) time.Duration { d, _ := time.ParseDuration(get(name)); return d }
	renew, _ := strconv.ParseInt(get("licensing.renewInterval"), 10, 64)
	return policy{
		borrow:              dur("licensing.borrowInterval"),
		borrowMax:           dur("licensing.borrowIntervalMax"),
		renewPercent:        renew,
		releaseOnDisconnect: get("licensing.releaseOnDisconnect") == "true",
		allowDeviceDrop:     get("server.allowDeviceDrop") == "true",
		requireOnboarding:   get("security.requireOnboarding") == "true",
	}
}

// checkLocks validates a rights source's locks and returns them canonical.
func checkLocks(locks map[string]string) (map[string]string, error) {
	if len(locks) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(locks))
	for name, value := range locks {
		d, ok := lookupProperty(name)
		if !ok {
			return nil, fmt.Errorf("%w %q in producer locks", ErrUnknownProperty, name)
		}
		v, err := d.normalize(value)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}
