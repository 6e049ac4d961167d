// Package httpconn is the built-in connector that reaches a back office
// over HTTPS. Each operation is one POST of the bytes it was given:
//
//	POST <url>/v1/exchange      signed capability request -> 200 with the signed response
//	                            (202 or 204: accepted, no response yet)
//	POST <url>/v1/licensing-id  licensing-ID certificate (DER) -> any 2xx
//	POST <url>/v1/usage         signed usage report -> any 2xx
//
// The back office is trusted through a CA file, a pinned SHA-256 of its
// certificate, or else the system's roots. Each try has its own timeout;
// network errors, 408, 429 and 5xx are tried again with exponential backoff
// and jitter up to a bounded number of tries; any other answer is final.
// Redirects are not followed. Responses are bounded in size.
package httpconn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/plugins"
)

// Version is the version the connector describes itself with.
const Version = "1"

// Config configures the HTTPS connector. Zero fields take the defaults.
type Config struct {
	// URL is the back office's base URL; it must be https.
	URL string
	// CAFile is a PEM file of the CAs that may sign the back office's
	// certificate.
	CAFile string
	// PinSHA256 is the SHA-256 of the back office's certificate (DER), hex
	// with or without colons. It replaces chain verification.
	PinSHA256 string
	// TryTimeout bounds each try. Default 15s.
	TryTimeout time.Duration
	// Attempts bounds the tries per operation. Default 4.
	Attempts int
	// MinBackoff and MaxBackoff bound the wait between tries, which doubles
	// after each. Defaults 250ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// MaxResponse bounds a response body. Default plugins.MaxPayload.
	MaxResponse int64
	// Jitter returns a random duration in [0, d). Default math/rand/v2.
	Jitter func(d time.Duration) time.Duration
}

// Connector posts to a back office over HTTPS.
type Connector struct {
	cfg    Config
	base   *url.URL
	client *http.Client
}

var _ plugins.Connector = (*Connector)(nil)

// errPinMismatch is returned by the TLS handshake with a back office whose
// certificate is not the pinned one.
var errPinMismatch = errors.New("back office certificate does not match the pinned SHA-256")

// New checks cfg and returns the connector.
func New(cfg Config) (*Connector, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("%w: back office URL %q must be https://host[:port][/path]", plugins.ErrInvalid, cfg.URL)
	}
	tlsConfig, err := tlsConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.TryTimeout <= 0 {
		cfg.TryTimeout = 15 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.MaxResponse <= 0 || cfg.MaxResponse > plugins.MaxPayload {
		cfg.MaxResponse = plugins.MaxPayload
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration { return rand.N(d) }
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &Connector{
		cfg:  cfg,
		base: base,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

func tlsConfigFor(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.CAFile != "" && cfg.PinSHA256 != "":
		return nil, fmt.Errorf("%w: give a CA file or a certificate pin, not both", plugins.ErrInvalid)
	case cfg.CAFile != "":
		pemData, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %w", plugins.ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", plugins.ErrInvalid, cfg.CAFile)
		}
		tc.RootCAs = pool
	case cfg.PinSHA256 != "":
		pin, err := plugins.ParseSHA256(cfg.PinSHA256)
		if err != nil {
			return nil, fmt.Errorf("certificate pin: %w", err)
		}
		// The pin stands in for chain and name verification, which would
		// refuse the self-signed certificate a pinned back office has.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errPinMismatch
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return errPinMismatch
			}
			return nil
		}
	}
	return tc, nil
}

// Describe says this is the online HTTPS connector.
func (c *Connector) Describe(context.Context) (plugins.Description, error) {
	return plugins.Description{Name: "http", Version: Version, Online: true}, nil
}

// Exchange posts the request to /v1/exchange and returns the response body.
func (c *Connector) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	code, body, err := c.post(ctx, "v1/exchange", "application/octet-stream", request)
	if err != nil {
		return nil, err
	}
	if code == http.StatusAccepted || code == http.StatusNoContent {
		return nil, fmt.Errorf("back office answered %d: %w", code, plugins.ErrNoResponseYet)
	}
	return body, nil
}

// RegisterLicensingID posts the certificate to /v1/licensing-id.
func (c *Connector) RegisterLicensingID(ctx context.Context, certDER []byte) error {
	_, _, err := c.post(ctx, "v1/licensing-id", "application/pkix-cert", certDER)
	return err
}

// ReportUsage posts the report to /v1/usage.
func (c *Connector) ReportUsage(ctx context.Context, report []byte) error {
	_, _, err := c.post(ctx, "v1/usage", "application/octet-stream", report)
	return err
}

// post tries the POST until it gets a final answer, runs out of tries or
// ctx ends, and returns the 2xx status and body.
func (c *Connector) post(ctx context.Context, endpoint, contentType string, body []byte) (int, []byte, error) {
	target := c.base.JoinPath(endpoint).String()
	wait := c.cfg.MinBackoff
	var last error // the last answer, more telling than the deadline
	for attempt := 1; ; attempt++ {
		code, resp, retry, err := c.try(ctx, target, contentType, body)
		if err == nil {
			return code, resp, nil
		}
		if ctx.Err() != nil && last != nil {
			err = last
		}
		if !retry || attempt == c.cfg.Attempts || ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s (try %d of %d): %w", target, attempt, c.cfg.Attempts, err)
		}
		last = err
		// Equal jitter: between half the backoff and all of it.
		pause := wait/2 + c.cfg.Jitter(wait/2+1)
		wait = min(2*wait, c.cfg.MaxBackoff)
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("%s (try %d, gave up: %v): %w", target, attempt, ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// maxSnippet bounds the part of an error body quoted in an error.
const maxSnippet = 200

// try makes one POST. retry says whether another try may do better.
func (c *Connector) try(ctx context.Context, target, contentType string, body []byte) (code int, resp []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.TryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, false, fmt.Errorf("%w: %w", plugins.ErrInvalid, err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := c.client.Do(req)
	if err != nil {
		return 0, nil, !errors.Is(err, errPinMismatch), fmt.Errorf("%w: %w", plugins.ErrUnreachable, err)
	}
	defer res.Body.Close()
	resp, err = io.ReadAll(io.LimitReader(res.Body, c.cfg.MaxResponse+1))
	switch {
	case err != nil:
		return 0, nil, true, fmt.Errorf("%w: reading the answer: %w", plugins.ErrUnreachable, err)
	case int64(len(resp)) > c.cfg.MaxResponse:
		return 0, nil, false, fmt.Errorf("%w: answer over %d bytes", plugins.ErrTooLarge, c.cfg.MaxResponse)
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return res.StatusCode, resp, false, nil
	case res.StatusCode == http.StatusRequestTimeout || res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return 0, nil, true, fmt.Errorf("%w: %s%s", plugins.ErrUnreachable, res.Status, snippet(resp))
	}
	return 0, nil, false, fmt.Errorf("%w: %s%s", plugins.ErrRejected, res.Status, snippet(resp))
}

// snippet quotes the start of an error body, printable characters only.
func snippet(body []byte) string {
	s := strings.ToValidUTF8(string(body[:min(len(body), maxSnippet)]), "")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return ": " + s
}
