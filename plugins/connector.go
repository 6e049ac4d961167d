package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
)

// Connector is what a back-office connector does. Every byte slice it takes
// or returns is opaque to it: requests, reports and responses are signed by
// tallyd or by the producer, and tallyd verifies what comes back.
type Connector interface {
	// Describe says what the connector is and which ways of working it
	// offers.
	Describe(ctx context.Context) (Description, error)
	// Exchange sends a signed capability request and returns the signed
	// capability response. An offline connector that has none yet returns
	// an error wrapping ErrNoResponseYet.
	Exchange(ctx context.Context, request []byte) ([]byte, error)
	// RegisterLicensingID hands the main licensing-ID certificate (DER) to
	// the back office.
	RegisterLicensingID(ctx context.Context, certDER []byte) error
	// ReportUsage hands a signed usage report to the back office.
	ReportUsage(ctx context.Context, report []byte) error
}

// Description is what a connector says about itself.
type Description struct {
	// Name is short and machine-friendly ("http", "dir").
	Name string `json:"name"`
	// Version is the connector's own version, free text.
	Version string `json:"version"`
	// Online is true when the connector reaches a back office directly.
	Online bool `json:"online"`
	// Offline is true when it exchanges files carried by hand.
	Offline bool `json:"offline"`
}

// MaxPayload bounds every byte slice that crosses the connector contract.
const MaxPayload = 4 << 20

// Errors a connector reports. Each crosses the wire as one gRPC status code
// (see wireCodes), so the host can test them with errors.Is whatever process
// they came from.
var (
	ErrUnreachable   = errors.New("back office unreachable")
	ErrNoResponseYet = errors.New("no response yet")
	ErrRejected      = errors.New("back office rejected the request")
	ErrInvalid       = errors.New("invalid connector input")
	ErrTooLarge      = errors.New("message too large")
	ErrUnsupported   = errors.New("not supported by this connector")
	// ErrTimeout is returned when a call did not finish in time, whether the
	// connector said so or the host gave up on it.
	ErrTimeout = errors.New("connector call timed out")
)

// Errors of the host.
var (
	ErrNotRunning = errors.New("connector not running")
	ErrHandshake  = errors.New("connector handshake failed")
	ErrChecksum   = errors.New("connector binary checksum mismatch")
	ErrNoChecksum = errors.New("external connector has no SHA-256")
	ErrClosed     = errors.New("connector host closed")
)

// wireCodes is the one mapping between errors and gRPC status codes.
var wireCodes = [...]struct {
	err  error
	code codes.Code
}{
	{ErrUnreachable, codes.Unavailable},
	{ErrNoResponseYet, codes.NotFound},
	{ErrRejected, codes.FailedPrecondition},
	{ErrInvalid, codes.InvalidArgument},
	{ErrTooLarge, codes.ResourceExhausted},
	{ErrUnsupported, codes.Unimplemented},
	{ErrTimeout, codes.DeadlineExceeded},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// codeOf is the status code err crosses the wire with.
func codeOf(err error) codes.Code {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce.Code
	}
	for _, w := range wireCodes {
		if errors.Is(err, w.err) {
			return w.code
		}
	}
	return codes.Unknown
}

// ConnectorError is an error reported by a connector process, as it arrived
// over the wire. It unwraps to the sentinel of its code, so
// errors.Is(err, ErrNoResponseYet) works across the process boundary.
type ConnectorError struct {
	Code    codes.Code
	Message string
}

func (e *ConnectorError) Error() string {
	return fmt.Sprintf("connector: %s", e.Message)
}

func (e *ConnectorError) Unwrap() error {
	for _, w := range wireCodes {
		if w.code == e.Code {
			return w.err
		}
	}
	return nil
}

// maxMessage bounds the text of an error on the wire.
const maxMessage = 1024

// clip shortens s to maxMessage bytes of valid UTF-8.
func clip(s string) string {
	if len(s) > maxMessage {
		s = s[:maxMessage]
	}
	return strings.ToValidUTF8(s, "")
}

// checkPayload refuses an empty or oversized payload before it is sent.
func checkPayload(what string, b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(b) > MaxPayload:
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, len(b), MaxPayload)
	}
	return nil
}

// ParseSHA256 reads a SHA-256 written as 64 hex digits, in either case,
// optionally with colons between the pairs as openssl prints fingerprints.
func ParseSHA256(s string) ([]byte, error) {
	sum, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: SHA-256 %q is not 64 hex digits", ErrInvalid, s)
	}
	return sum, nil
}
