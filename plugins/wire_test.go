package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorsKeepTheirMeaningOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("dial: %w", ErrUnreachable), codes.Unavailable},
		{fmt.Errorf("request 3: %w", ErrNoResponseYet), codes.NotFound},
		{ErrRejected, codes.FailedPrecondition},
		{ErrInvalid, codes.InvalidArgument},
		{ErrTooLarge, codes.ResourceExhausted},
		{ErrUnsupported, codes.Unimplemented},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Unknown},
	} {
		got := fromStatus(toStatus(tc.err))
		var ce *ConnectorError
		if !errors.As(got, &ce) || ce.Code != tc.code || ce.Message != tc.err.Error() {
			t.Errorf("%v: came back as %#v, want code %v", tc.err, got, tc.code)
			continue
		}
		// The sentinel survives; a connector's timeout reads as ErrTimeout.
		for _, sentinel := range []error{ErrUnreachable, ErrNoResponseYet, ErrRejected, ErrInvalid, ErrTooLarge, ErrUnsupported} {
			if errors.Is(tc.err, sentinel) != errors.Is(got, sentinel) {
				t.Errorf("%v: errors.Is(%v) differs after the wire", tc.err, sentinel)
			}
		}
		if errors.Is(tc.err, context.DeadlineExceeded) && !errors.Is(got, ErrTimeout) {
			t.Errorf("%v: not ErrTimeout after the wire", tc.err)
		}
	}
	// A status without the marker is the transport's, and stays as it is.
	transport := status.Error(codes.Unavailable, "connection refused")
	if got := fromStatus(transport); got != transport {
		t.Errorf("transport error became %v", got)
	}
	// Long messages are cut to valid UTF-8.
	long := strings.Repeat("é", maxMessage)
	var ce *ConnectorError
	if got := fromStatus(toStatus(errors.New(long))); !errors.As(got, &ce) || len(ce.Message) > maxMessage || !strings.HasPrefix(long, ce.Message) {
		t.Errorf("long message came back as %d bytes", len(ce.Message))
	}
}

func TestDescription(t *testing.T) {
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"name":"http","version":"1.2","online":true,"offline":false}`, true},
		{`{"name":"acme.sync_2","version":""}`, true},
		{`{"name":"","version":"1"}`, false},
		{`{"name":"a b","version":"1"}`, false},
		{`{"name":"` + strings.Repeat("n", maxField+1) + `"}`, false},
		{`{"name":"x","version":"1\n2"}`, false},
		{`{"name":"x","version":"ü"}`, false},
		{`{"name":"x","extra":1}`, false},
		{`{"name":"x"} {}`, false},
		{`{"name":"x","online":"yes"}`, false},
		{`[]`, false},
		{``, false},
	} {
		d, err := decodeDescription([]byte(tc.json))
		if (err == nil) != tc.ok {
			t.Errorf("%s: %+v, %v; want ok=%v", tc.json, d, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tc.json, err)
		}
	}
	if _, err := encodeDescription(Description{Name: "bad name"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a connector may not send an invalid description: %v", err)
	}
	if _, err := decodeDescription(bytes.Repeat([]byte(" "), maxDescription+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized description: %v", err)
	}
}

// FuzzDecodeDescription holds that whatever a connector sends as its
// description, decoding never panics, and what it accepts is valid and
// survives a round trip.
func FuzzDecodeDescription(f *testing.F) {
	f.Add([]byte(`{"name":"dir","version":"1","online":false,"offline":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decodeDescription(data)
		if err != nil {
			return
		}
		if err := d.validate(); err != nil {
			t.Fatalf("accepted an invalid description %+v: %v", d, err)
		}
		again, err := encodeDescription(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := decodeDescription(again)
		if err != nil || d2 != d {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", d, again, d2, err)
		}
	})
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("plugin", "acme")
	var l hclog.Logger = newHCLogAdapter(base)
	l = l.Named("stdio").With("pid", 42)

	l.Debug("dropped: below the handler's level")
	l.Warn("went wrong", "error", "boom", "plugin", "/usr/bin/acme", "fmt", hclog.Fmt("%d tries", 3), "odd")
	if l.IsDebug() || !l.IsInfo() || l.GetLevel() != hclog.Info {
		t.Errorf("levels: debug %v info %v level %v", l.IsDebug(), l.IsInfo(), l.GetLevel())
	}
	fmt.Fprint(l.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}), "first\nsecond\n")

	var records []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		records = append(records, r)
	}
	if len(records) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(records), buf.String())
	}
	want := map[string]any{
		"level": "WARN", "msg": "went wrong", "plugin": "acme", "component": "stdio", "pid": 42.0,
		"error": "boom", "command": "/usr/bin/acme", "fmt": "3 tries", "EXTRA_VALUE_AT_END": "odd",
	}
	for k, v := range want {
		if records[0][k] != v {
			t.Errorf("%s = %v, want %v", k, records[0][k], v)
		}
	}
	if records[1]["msg"] != "first" || records[2]["msg"] != "second" || records[1]["level"] != "ERROR" {
		t.Errorf("standard writer records: %v", records[1:])
	}
}
