package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

// maxBody bounds what the back office reads of a request or certificate.
const maxBody = 4 << 20

// answerer answers capability requests from the books, signing with the
// producer key.
type answerer struct {
	books *store
	key   *ecdsa.PrivateKey
	now   func() time.Time
}

// answer turns a capability request into the signed response: it checks
// the request's signature and that its licensing ID is registered, records
// the usage windows it has not seen, applies the activations, and answers
// with every line the server holds now.
func (a *answerer) answer(data []byte) ([]byte, error) {
	req, err := capability.ParseRequest(data)
	if err != nil {
		return nil, err
	}
	windows := make(map[uint64]json.RawMessage, len(req.Usage))
	for _, w := range req.Usage {
		body, err := json.Marshal(w)
		if err != nil {
			return nil, err
		}
		windows[w.ID] = body
	}
	asks := make([]activation, len(req.Activations))
	for i, act := range req.Activations {
		asks[i] = activation{ActivationID: act.ActivationID, Count: act.Count}
	}
	now := a.now()
	res, err := a.books.exchange(exchange{Server: req.Server, Windows: windows, Asks: asks, Now: now})
	if err != nil {
		return nil, err
	}
	resp := capability.Response{Server: req.Server, RequestSequence: req.Sequence, Sequence: res.Sequence, Issued: now, UsageAck: res.UsageAck}
	for _, r := range res.Activations {
		resp.Activations = append(resp.Activations, core.ActivationResult{ActivationID: r.ActivationID, Count: r.Count, Result: core.ActivationOutcome(r.Result)})
	}
	for _, e := range res.Held {
		lines, err := linesOf(e, res.Products[e.Product], e.Allocated[req.Server])
		if err != nil {
			return nil, err
		}
		resp.Lines = append(resp.Lines, lines...)
	}
	return capability.IssueResponse(a.key, resp, rand.Reader)
}

// linesOf are the feature lines of units of an entitlement: its feature
// version, or each line of its product times the units.
func linesOf(e entitlement, p product, units int64) ([]core.FeatureLine, error) {
	rows := []productLine{{Feature: e.Feature, Version: e.Version, Count: 1}}
	if e.Product != "" {
		rows = p.Lines
	}
	var expiry time.Time
	if e.Expiry != "" {
		day, err := time.Parse("2006-01-02", e.Expiry)
		if err != nil {
			return nil, fmt.Errorf("entitlement %s: expiry %q", e.ActivationID, e.Expiry)
		}
		expiry = day.AddDate(0, 0, 1)
	}
	lines := make([]core.FeatureLine, 0, len(rows))
	for _, r := range rows {
		v, err := version.Parse(r.Version)
		if err != nil {
			return nil, fmt.Errorf("entitlement %s: %w", e.ActivationID, err)
		}
		id := e.ActivationID
		if e.Product != "" {
			id += "/" + r.Feature + "/" + r.Version
		}
		lines = append(lines, core.FeatureLine{ID: id, Name: r.Feature, Version: v, Count: units * r.Count, Expiry: expiry})
	}
	return lines, nil
}

// registerFile registers the licensing-ID certificate in path (PEM or DER).
func registerFile(s *store, path string, now time.Time) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return registerCert(s, data, now)
}

// registerCert registers a licensing-ID certificate (PEM or DER) and
// returns its fingerprint.
func registerCert(s *store, data []byte, now time.Time) (string, error) {
	if block, _ := pem.Decode(data); block != nil {
		data = block.Bytes
	}
	cert, err := x509.ParseCertificate(data)
	if err != nil {
		return "", fmt.Errorf("not a licensing-ID certificate: %w", err)
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		return "", errors.New("not a licensing-ID certificate: the key is not ECDSA")
	}
	fp := fingerprint(cert.Raw)
	return fp, s.register(fp, cert.Raw, now)
}

// fingerprint writes the SHA-256 of a DER certificate as openssl does.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, usageErr("--key PRODUCER.key is required (tallyctl producer keygen makes one)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return rights.ParsePrivateKey(data)
}

// cmdAnswer answers a request file with a response file: the offline
// exchange.
func cmdAnswer(s *store, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("answer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key", "", "")
	in := fs.String("in", "", "")
	out := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *in == "" || *out == "" {
		return usageErr("answer --key PRODUCER.key --in REQUEST.bin --out RESPONSE.bin")
	}
	key, err := readKey(*keyFile)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	resp, err := (&answerer{books: s, key: key, now: time.Now}).answer(data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, resp, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

// handler serves the HTTPS protocol of the http connector.
func (a *answerer) handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	read := func(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "request too large or unreadable", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		return data, true
	}
	mux.HandleFunc("POST /v1/exchange", func(w http.ResponseWriter, r *http.Request) {
		data, ok := read(w, r)
		if !ok {
			return
		}
		resp, err := a.answer(data)
		if err != nil {
			log.Warn("exchange refused", "remote", r.RemoteAddr, "err", err)
			status := http.StatusBadRequest
			if errors.Is(err, errUnknownServer) {
				status = http.StatusForbidden
			}
			http.Error(w, err.Error(), status)
			return
		}
		log.Info("exchange answered", "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(resp)
	})
	mux.HandleFunc("POST /v1/licensing-id", func(w http.ResponseWriter, r *http.Request) {
		data, ok := read(w, r)
		if !ok {
			return
		}
		fp, err := registerCert(a.books, data, a.now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("licensing ID registered", "fingerprint", fp, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		// Usage travels inside capability requests, where it is signed and
		// recorded once; a separate report is answered with the same.
		data, ok := read(w, r)
		if !ok {
			return
		}
		if _, err := a.answer(data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func cmdServe(s *store, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key", "", "")
	addr := fs.String("addr", ":9443", "")
	certFile := fs.String("tls-cert", "", "")
	keyPEM := fs.String("tls-key", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || (*certFile == "") != (*keyPEM == "") {
		return usageErr("serve --key PRODUCER.key [--addr :9443] [--tls-cert F --tls-key F]")
	}
	key, err := readKey(*keyFile)
	if err != nil {
		return err
	}
	var cert tls.Certificate
	if *certFile != "" {
		cert, err = tls.LoadX509KeyPair(*certFile, *keyPEM)
	} else {
		cert, err = selfSigned()
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{
		Handler:           (&answerer{books: s, key: key, now: time.Now}).handler(log),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	fmt.Fprintf(stdout, "tally-backoffice serving https://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "TLS certificate SHA-256: %x\n", sha256.Sum256(leaf.Raw))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}
