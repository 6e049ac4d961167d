package capability

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/internal/envelope"
	"github.com/tallyhq/tally/core/licensingid"
)

// Format strings of requests and responses; each is also the signing
// context of its format.
const (
	RequestFormat  = "tally-capability-request/1"
	ResponseFormat = "tally-capability-response/1"
)

// MaxBytes bounds a request or a response, as the back-office connectors
// bound what they carry; a larger one is refused unread.
const MaxBytes = 4 << 20

// Errors that ParseRequest, VerifyResponse and the signing functions wrap
// and callers branch on with errors.Is.
var (
	// ErrMalformed is wrapped when a message is not well formed: not JSON,
	// unknown fields, bad base64, too large, a bad certificate, or content
	// out of bounds (a sequence of 0, usage or activations core would
	// refuse).
	ErrMalformed = errors.New("malformed capability message")
	// ErrUntrustedKey is wrapped when a response is signed by a key the
	// server does not trust.
	ErrUntrustedKey = errors.New("capability response signed by an untrusted key")
	// ErrBadSignature is wrapped when the signature does not verify: the
	// payload or the signature was changed, or it was made for another
	// format.
	ErrBadSignature = errors.New("capability message signature does not verify")
	// ErrWrongServer is wrapped when a response is for another server, or a
	// request is signed for a server other than its certificate's.
	ErrWrongServer = errors.New("capability message is for another server")
	// ErrInvalidKey is wrapped when a signing key cannot be used: not
	// ECDSA P-256, or not the key of the certificate it signs with.
	ErrInvalidKey = errors.New("invalid capability signing key")
)

var (
	requestSpec = envelope.Spec{
		Format: RequestFormat, Context: RequestFormat, MaxBytes: MaxBytes,
		ErrMalformed: ErrMalformed, ErrUntrustedKey: ErrUntrustedKey, ErrBadSignature: ErrBadSignature, ErrInvalidKey: ErrInvalidKey,
	}
	responseSpec = envelope.Spec{
		Format: ResponseFormat, Context: ResponseFormat, MaxBytes: MaxBytes,
		ErrMalformed: ErrMalformed, ErrUntrustedKey: ErrUntrustedKey, ErrBadSignature: ErrBadSignature, ErrInvalidKey: ErrInvalidKey,
	}
)

// Request is a capability request, as its payload holds it.
type Request struct {
	// Server is the fingerprint of Certificate.
	Server string `json:"server"`
	// Certificate is the DER certificate of the main licensing ID.
	Certificate []byte             `json:"certificate"`
	Sequence    uint64             `json:"sequence"`
	Issued      time.Time          `json:"issued"`
	Usage       []core.UsageWindow `json:"usage"`
	Activations []core.Activation  `json:"activations"`
}

// NewRequest returns the request for the pending request of a state
// (core.State.PendingSync), from the server with the given certificate.
func NewRequest(cert []byte, p core.SyncRequest) Request {
	return Request{
		Server: licensingid.Fingerprint(cert), Certificate: cert, Sequence: p.Sequence, Issued: p.Issued,
		Usage: p.Windows, Activations: p.Activations,
	}
}

// SignRequest signs r with key, the main licensing ID whose DER
// certificate is cert, and returns the request. It sets r's certificate
// and server (an r naming another server is refused with ErrWrongServer)
// and refuses a request ParseRequest would refuse for its content. random
// is passed to crypto/ecdsa; nil means crypto/rand.
func SignRequest(key *ecdsa.PrivateKey, cert []byte, r Request, random io.Reader) ([]byte, error) {
	pub, err := certificateKey(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if key == nil || !key.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("%w: the key is not the licensing ID certificate's", ErrInvalidKey)
	}
	server := licensingid.Fingerprint(cert)
	if r.Server != "" && r.Server != server {
		return nil, fmt.Errorf("%w: the request names %s, the certificate is %s", ErrWrongServer, r.Server, server)
	}
	r.Server, r.Certificate, r.Issued = server, cert, r.Issued.UTC()
	if err := checkRequest(&r); err != nil {
		return nil, err
	}
	// The wire says "no usage" and "no activations" with empty lists.
	r.Usage = append([]core.UsageWindow{}, r.Usage...)
	for i := range r.Usage {
		w := &r.Usage[i]
		w.From, w.To = w.From.UTC(), w.To.UTC()
	}
	r.Activations = append([]core.Activation{}, r.Activations...)
	return requestSpec.Seal(key, server, r, random)
}

// ParseRequest reads and verifies a capability request: the size and the
// format, the envelope and the payload as strict JSON, that the
// certificate is an ECDSA P-256 one whose fingerprint the server and key
// fields name, that its key signed the payload, and the content: a
// sequence above 0, usage windows as core.ValidateUsage and activations as
// core.ValidateActivations want them. Every error wraps ErrMalformed,
// ErrBadSignature or ErrWrongServer. It does not look at the certificate's
// validity period or whether the back office knows it.
func ParseRequest(data []byte) (Request, error) {
	o, err := requestSpec.Open(data)
	if err != nil {
		return Request{}, err
	}
	var r Request
	if err := requestSpec.Decode(o.Payload, &r); err != nil {
		return Request{}, err
	}
	pub, err := certificateKey(r.Certificate)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if server := licensingid.Fingerprint(r.Certificate); r.Server != server || o.Key != server {
		return Request{}, fmt.Errorf("%w: the request names %s and is signed as %s, its certificate is %s", ErrWrongServer, r.Server, o.Key, server)
	}
	if err := requestSpec.Check(pub, o); err != nil {
		return Request{}, err
	}
	if err := checkRequest(&r); err != nil {
		return Request{}, err
	}
	return r, nil
}

// certificateKey returns the ECDSA P-256 key of a DER certificate.
func certificateKey(der []byte) (*ecdsa.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if err := envelope.CheckP256(pub); err != nil {
		return nil, fmt.Errorf("certificate %w", err)
	}
	return pub, nil
}

// checkRequest refuses the content of a request that core would not make,
// and leaves empty lists nil.
func checkRequest(r *Request) error {
	if len(r.Usage) == 0 {
		r.Usage = nil
	}
	if len(r.Activations) == 0 {
		r.Activations = nil
	}
	if r.Sequence == 0 {
		return fmt.Errorf("%w: request sequence must be above 0", ErrMalformed)
	}
	if err := core.ValidateUsage(r.Usage); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := core.ValidateActivations(r.Activations); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// Response is a capability response, as its payload holds it.
type Response struct {
	// Server is the fingerprint of the licensing certificate of the server
	// it is for.
	Server string `json:"server"`
	// RequestSequence is the request it answers; Sequence its own,
	// strictly increasing per server.
	RequestSequence uint64    `json:"requestSequence"`
	Sequence        uint64    `json:"sequence"`
	Issued          time.Time `json:"issued"`
	// Lines are every line the back office grants the server; they name no
	// source.
	Lines []core.FeatureLine `json:"lines"`
	// Locks are property values the producer fixes on the server.
	Locks map[string]string `json:"locks,omitempty"`
	// UsageAck is the highest usage window the back office has recorded.
	UsageAck    uint64                  `json:"usageAck"`
	Activations []core.ActivationResult `json:"activations"`
}

// IssueResponse signs r with a producer key and returns the response. It
// refuses a response VerifyResponse would refuse for its content. random is
// passed to crypto/ecdsa; nil means crypto/rand.
func IssueResponse(key *ecdsa.PrivateKey, r Response, random io.Reader) ([]byte, error) {
	if err := checkResponse(&r); err != nil {
		return nil, err
	}
	r.Issued = r.Issued.UTC()
	// The wire says "no lines" and "no activations" with empty lists.
	r.Lines = append([]core.FeatureLine{}, r.Lines...)
	r.Activations = append([]core.ActivationResult{}, r.Activations...)
	return responseSpec.Seal(key, "", r, random)
}

// Verifier checks capability responses for one server against the
// producer keys it trusts, the same keys as for rights files. It is safe
// for concurrent use.
type Verifier struct{ trust envelope.Trust }

// NewVerifier returns a verifier for the server with the given certificate
// fingerprint that trusts the given producer keys. Nil keys are skipped; a
// verifier that trusts no key refuses every response with ErrUntrustedKey.
func NewVerifier(server string, trusted ...*ecdsa.PublicKey) *Verifier {
	return &Verifier{envelope.NewTrust(server, trusted...)}
}

// VerifyResponse checks a capability response: the size and the format,
// the envelope (strict JSON), that the key is trusted, the signature over
// the exact payload bytes in the response's context, the payload (strict
// JSON), that it is for this server, and its content: sequences above 0,
// lines that name no source, activation results as
// core.ValidateActivationResults wants them. The lines themselves are left
// to core, which checks them when CompleteSync is applied, and so is
// whether the response answers the pending request and is not a replay.
// Every error wraps one of ErrMalformed, ErrUntrustedKey, ErrBadSignature
// or ErrWrongServer.
func (v *Verifier) VerifyResponse(data []byte) (Response, error) {
	var r Response
	if err := v.trust.Open(&responseSpec, data, &r); err != nil {
		return Response{}, err
	}
	if r.Server != v.trust.Server {
		return Response{}, fmt.Errorf("%w: issued for %s, this server is %s", ErrWrongServer, r.Server, v.trust.Server)
	}
	if err := checkResponse(&r); err != nil {
		return Response{}, err
	}
	return r, nil
}

// checkResponse refuses a response without server or sequences, with lines
// that name a source, or with activation results core would refuse, and
// leaves empty locks and activations nil.
func checkResponse(r *Response) error {
	if len(r.Locks) == 0 {
		r.Locks = nil
	}
	if len(r.Activations) == 0 {
		r.Activations = nil
	}
	switch {
	case strings.TrimSpace(r.Server) == "":
		return fmt.Errorf("%w: no server fingerprint", ErrMalformed)
	case r.RequestSequence == 0 || r.Sequence == 0:
		return fmt.Errorf("%w: response %d answers request %d; both must be above 0", ErrMalformed, r.Sequence, r.RequestSequence)
	}
	for i, l := range r.Lines {
		if l.Source != "" {
			return fmt.Errorf("%w: line %d names source %q; response lines name none", ErrMalformed, i+1, l.Source)
		}
	}
	if err := core.ValidateActivationResults(r.Activations); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// CompleteSync returns the command that applies a verified response,
// loading its lines into the rights source given (core.DefaultSyncSource
// when empty).
func (r Response) CompleteSync(source string) *core.CompleteSync {
	return &core.CompleteSync{
		RequestSequence: r.RequestSequence, Sequence: r.Sequence, Source: source,
		Lines: r.Lines, Locks: r.Locks, UsageAck: r.UsageAck, Activations: r.Activations,
	}
}
