package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Limits of the client.
const (
	requestTimeout   = 60 * time.Second
	maxResponseBytes = 64 << 20
	maxErrorBytes    = 64 << 10
)

// client speaks Tally's REST API for one invocation: it logs in on the
// first request that needs it and keeps the token.
type client struct {
	base     string // https://host:port, without a trailing slash
	http     *http.Client
	user     string
	password func() (string, error)
	token    string
}

// apiError is an error the server reported as {"error","code"}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// newClient checks the server address and builds the TLS configuration from
// --ca or --insecure.
func newClient(server, caFile string, insecure bool, user string, password func() (string, error)) (*client, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, usageError("--server %q is not an https://HOST:PORT address", server)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case insecure:
		tlsConfig.InsecureSkipVerify = true
	case caFile != "":
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("read CA: no PEM certificate in %s", caFile)
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.Proxy = nil
	return &client{
		base:     strings.TrimSuffix(u.String(), "/"),
		http:     &http.Client{Transport: transport, Timeout: requestTimeout},
		user:     user,
		password: password,
	}, nil
}

// apiPath joins escaped path segments under /api/v1.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// request is one API call.
type request struct {
	method      string
	path        string // from apiPath
	query       url.Values
	body        []byte
	contentType string
	noAuth      bool
}

// do sends a request and returns the response body of a 2xx answer; any
// other answer becomes an *apiError.
func (c *client) do(ctx context.Context, r request) ([]byte, error) {
	if !r.noAuth && c.token == "" {
		if err := c.login(ctx); err != nil {
			return nil, err
		}
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	if !r.noAuth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, describeTransportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, responseError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", r.method, r.path, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", r.method, r.path, maxResponseBytes)
	}
	return data, nil
}

// decodeResponse decodes a JSON answer into out; a nil out takes nothing.
func decodeResponse(path string, data []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: unexpected response: %w", path, err)
	}
	return nil
}

// login exchanges the user and password for a token.
func (c *client) login(ctx context.Context) error {
	password, err := c.password()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"user": c.user, "password": password})
	if err != nil {
		return err
	}
	data, err := c.do(ctx, request{method: http.MethodPost, path: apiPath("auth", "login"), body: body,
		contentType: "application/json", noAuth: true})
	if err != nil {
		return fmt.Errorf("log in as %s: %w", c.user, err)
	}
	var answer struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || answer.Token == "" {
		return fmt.Errorf("log in as %s: the server sent no token", c.user)
	}
	c.token = answer.Token
	return nil
}

// responseError reads an error answer. The API sends {"error","code"};
// anything else (a proxy's page, say) is reported by its status and the
// start of its text.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		return &apiError{Status: resp.StatusCode, Code: body.Code, Message: oneLine(body.Error)}
	}
	msg := oneLine(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apiError{Status: resp.StatusCode, Message: "server answered " + msg}
}

// describeTransportError shortens errors from the HTTP client to the
// reason, keeping the address.
func describeTransportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		var unknown x509.UnknownAuthorityError
		if errors.As(uerr.Err, &unknown) {
			return fmt.Errorf("%s: the server's certificate is not trusted (give its CA with --ca, or --insecure for a --dev node): %w", uerr.URL, uerr.Err)
		}
		return fmt.Errorf("%s: %w", uerr.URL, uerr.Err)
	}
	return err
}
