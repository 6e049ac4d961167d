package rights

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/internal/envelope"
)

// Format is the format string of the rights files this package reads and
// writes.
const Format = "tally-rights/1"

// MaxFileBytes bounds a rights file; a larger one is refused unread.
const MaxFileBytes = 16 << 20

// Errors that Verify wraps and callers branch on with errors.Is.
var (
	// ErrMalformed is wrapped when a file is not a well-formed rights file
	// of this format: not JSON, unknown fields, bad base64, too large, or a
	// payload without source or sequence.
	ErrMalformed = errors.New("malformed rights file")
	// ErrUntrustedKey is wrapped when a file is signed by a key the server
	// does not trust.
	ErrUntrustedKey = errors.New("rights file signed by an untrusted key")
	// ErrBadSignature is wrapped when the signature does not verify: the
	// payload or the signature was changed.
	ErrBadSignature = errors.New("rights file signature does not verify")
	// ErrWrongServer is wrapped when a file was issued for another server.
	ErrWrongServer = errors.New("rights file is for another server")
	// ErrInvalidKey is wrapped when a producer key cannot be read or used.
	ErrInvalidKey = errors.New("invalid producer key")
)

// Rights is what a producer issues to one server.
type Rights struct {
	// Server is the fingerprint of the server's licensing certificate.
	Server string
	// Source names the rights; a later file of the same source with a
	// higher Sequence replaces them.
	Source   string
	Sequence uint64
	Issued   time.Time
	Lines    []core.FeatureLine
	// Locks are property values the producer fixes on the server.
	Locks map[string]string
}

// spec is the envelope of a rights file. Its signature has no context:
// the format predates them (see package envelope).
var spec = envelope.Spec{
	Format: Format, MaxBytes: MaxFileBytes,
	ErrMalformed: ErrMalformed, ErrUntrustedKey: ErrUntrustedKey, ErrBadSignature: ErrBadSignature, ErrInvalidKey: ErrInvalidKey,
}

// payload is the signed content of a rights file.
type payload struct {
	Server   string             `json:"server"`
	Source   string             `json:"source"`
	Sequence uint64             `json:"sequence"`
	Issued   time.Time          `json:"issued"`
	Lines    []core.FeatureLine `json:"lines"`
	Locks    map[string]string  `json:"locks,omitempty"`
}

// Issue signs r with key and returns the rights file. random is passed to
// crypto/ecdsa (see GenerateKey); nil means crypto/rand. Issue refuses
// rights that Verify would refuse for their content (no server, no source,
// sequence 0); it leaves the lines to core, or to ParseLines before it.
func Issue(key *ecdsa.PrivateKey, r Rights, random io.Reader) ([]byte, error) {
	if err := checkHeader(r.Server, r.Source, r.Sequence); err != nil {
		return nil, err
	}
	p := payload{
		Server: r.Server, Source: r.Source, Sequence: r.Sequence, Issued: r.Issued.UTC(),
		Lines: r.Lines, Locks: r.Locks,
	}
	if p.Lines == nil {
		p.Lines = []core.FeatureLine{}
	}
	return spec.Seal(key, "", p, random)
}

// Verifier checks rights files for one server against the producer keys it
// trusts. It is safe for concurrent use.
type Verifier struct{ trust envelope.Trust }

// NewVerifier returns a verifier for the server with the given certificate
// fingerprint that trusts the given producer keys. Nil keys are skipped; a
// verifier that trusts no key refuses every file with ErrUntrustedKey.
func NewVerifier(server string, trusted ...*ecdsa.PublicKey) *Verifier {
	return &Verifier{envelope.NewTrust(server, trusted...)}
}

// Verify checks a rights file and returns the command that loads it. It
// checks, in order: the size and the format string, the envelope (strict
// JSON, no unknown fields, no trailing data), that the key is trusted, the
// signature over the exact payload bytes, the payload (strict JSON), that it
// is for this server, and that it names a source and a sequence above zero.
// Lines that name no source get the payload's; a line naming another source
// is refused. The lines themselves are left to core, which validates them
// when the command is applied. Every error wraps one of ErrMalformed,
// ErrUntrustedKey, ErrBadSignature or ErrWrongServer.
func (v *Verifier) Verify(data []byte) (*core.LoadRights, error) {
	var p payload
	if err := v.trust.Open(&spec, data, &p); err != nil {
		return nil, err
	}
	if p.Server != v.trust.Server {
		return nil, fmt.Errorf("%w: issued for %s, this server is %s", ErrWrongServer, p.Server, v.trust.Server)
	}
	if err := checkHeader(p.Server, p.Source, p.Sequence); err != nil {
		return nil, err
	}
	lines := make([]core.FeatureLine, len(p.Lines))
	for i, l := range p.Lines {
		if l.Source != "" && l.Source != p.Source {
			return nil, fmt.Errorf("%w: line %d names source %q inside rights from %q", ErrMalformed, i+1, l.Source, p.Source)
		}
		l.Source = p.Source
		lines[i] = l
	}
	if len(p.Locks) == 0 {
		p.Locks = nil
	}
	return &core.LoadRights{Source: p.Source, Sequence: p.Sequence, Lines: lines, Locks: p.Locks}, nil
}

// checkHeader refuses a payload without a server, a source or a sequence.
func checkHeader(server, source string, sequence uint64) error {
	switch {
	case strings.TrimSpace(server) == "":
		return fmt.Errorf("%w: no server fingerprint", ErrMalformed)
	case strings.TrimSpace(source) == "":
		return fmt.Errorf("%w: no source", ErrMalformed)
	case sequence == 0:
		return fmt.Errorf("%w: sequence must be above 0", ErrMalformed)
	}
	return nil
}
