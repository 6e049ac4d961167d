package rights_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/rights"
)

// FuzzVerify checks that Verify never panics on any input, that every
// refusal is one line wrapping one of the package's sentinels, and that what
// it accepts is a complete command. The seeds in testdata/fuzz/FuzzVerify
// include files the demo key signed for serverFP, so mutations reach the
// payload checks.
func FuzzVerify(f *testing.F) {
	v := rights.NewVerifier(serverFP, &rights.DemoProducerKey().PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		load, err := v.Verify(data)
		if err != nil {
			if !errors.Is(err, rights.ErrMalformed) && !errors.Is(err, rights.ErrUntrustedKey) &&
				!errors.Is(err, rights.ErrBadSignature) && !errors.Is(err, rights.ErrWrongServer) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
			return
		}
		if strings.TrimSpace(load.Source) == "" || load.Sequence == 0 {
			t.Fatalf("accepted rights without source or sequence: %+v", load)
		}
		for i, l := range load.Lines {
			if l.Source != load.Source {
				t.Fatalf("line %d has source %q inside %q", i+1, l.Source, load.Source)
			}
		}
	})
}

// FuzzParseLines checks that ParseLines never panics, that every error
// names a line of the input and wraps a core sentinel, and that whatever it
// accepts survives the JSON of a rights payload unchanged and core accepts
// it too. The seeds are in testdata/fuzz/FuzzParseLines.
func FuzzParseLines(f *testing.F) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, text []byte) {
		lines, err := rights.ParseLines(text)
		if err != nil {
			var n int
			if _, scanErr := fmt.Sscanf(err.Error(), "line %d: ", &n); scanErr != nil || n < 1 || n > strings.Count(string(text), "\n")+1 {
				t.Fatalf("error does not name a line of the input: %v", err)
			}
			if !errors.Is(err, core.ErrInvalidFeature) && !errors.Is(err, core.ErrInvalidCount) {
				t.Fatalf("error wraps no core sentinel: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
			return
		}
		if len(lines) == 0 {
			return
		}
		data, err := json.Marshal(lines)
		if err != nil {
			t.Fatalf("parsed lines do not encode: %v", err)
		}
		var back []core.FeatureLine
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("parsed lines do not decode: %v\n%s", err, data)
		}
		if !reflect.DeepEqual(back, lines) {
			t.Fatalf("lines changed in JSON:\n%+v\nthen\n%+v", lines, back)
		}
		s := core.New(core.Config{})
		load := &core.LoadRights{Source: "fuzz", Sequence: 1, Lines: back}
		if _, err := s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: 1}, At: at, Command: load}); err != nil {
			t.Fatalf("core refuses lines ParseLines accepted: %v\n%q", err, text)
		}
	})
}
