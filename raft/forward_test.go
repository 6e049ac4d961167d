package raft

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
)

// TestForwardedErrorsComplete: every sentinel core declares crosses a
// forward, so a refusal on a follower is the one the leader gave.
func TestForwardedErrorsComplete(t *testing.T) {
	files, err := filepath.Glob("../core/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok || len(spec.Values) != 1 || !ast.IsExported(spec.Names[0].Name) {
				return true
			}
			call, ok := spec.Values[0].(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if fn, ok := call.Fun.(*ast.SelectorExpr); !ok || fn.Sel.Name != "New" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				return true
			}
			text, _ := strconv.Unquote(lit.Value)
			found++
			if _, ok := sentinelByText[text]; !ok {
				t.Errorf("core.%s (%q) is not in forwardedErrors", spec.Names[0].Name, text)
			}
			return true
		})
	}
	if found < 40 {
		t.Fatalf("found only %d sentinels in core", found)
	}
	if len(sentinelByText) != len(forwardedErrors) {
		t.Fatal("two forwarded sentinels share a text")
	}
}

// TestErrorRoundTrip: an error keeps its text and its sentinels across the
// wire; unknown sentinel texts are dropped.
func TestErrorRoundTrip(t *testing.T) {
	err := fmt.Errorf("%w: %w: key k1", ErrNotLeader, fmt.Errorf("%w: more", core.ErrKeyUsed))
	back := decodeError(encodeError(err))
	if back.Error() != err.Error() || !errors.Is(back, core.ErrKeyUsed) || !errors.Is(back, ErrNotLeader) || errors.Is(back, core.ErrKeyInactive) {
		t.Fatalf("round trip: %v", back)
	}
	if e := decodeError([]byte(`{"message":"m","sentinels":["from a newer version"]}`)); e.Error() != "m" || errors.Is(e, core.ErrNotApplied) {
		t.Fatalf("unknown sentinel: %v", e)
	}
	if e := decodeError([]byte("not json")); !errors.Is(e, core.ErrNotApplied) {
		t.Fatalf("unreadable: %v", e)
	}
}

// TestForwarderSharesADial: requests for a leader that died wait for one
// dial of it together rather than each dialing in turn, and a request for
// the next leader does not wait behind that dial.
func TestForwarderSharesADial(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	dials := map[string]int{}
	m := &mux{dialer: func(address string, timeout time.Duration) (net.Conn, error) {
		mu.Lock()
		dials[address]++
		mu.Unlock()
		if address == "dead:61616" {
			<-release
		}
		return nil, fmt.Errorf("dial %s: connection timed out", address)
	}}
	f := &forwarder{m: m}

	const waiting = 10
	errs := make(chan error, waiting)
	for range waiting {
		go func() {
			_, err := f.connect("dead:61616")
			errs <- err
		}()
	}
	// Every request but the one dialing waits for that dial.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		joined := f.dialing != nil && f.dialing.waiters == waiting-1
		f.mu.Unlock()
		if joined {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the requests did not all wait for the one dial")
		}
		time.Sleep(time.Millisecond)
	}
	// The next leader is dialed at once, while the dead one's dial hangs.
	if _, err := f.connect("next:61616"); err == nil {
		t.Fatal("the dial of next:61616 succeeded")
	}
	close(release)
	for range waiting {
		if err := <-errs; err == nil {
			t.Fatal("a request to the dead leader got a connection")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dials["dead:61616"] != 1 {
		t.Errorf("%d requests dialed the dead leader %d times, want one dial they share", waiting, dials["dead:61616"])
	}
	if dials["next:61616"] != 1 {
		t.Errorf("the next leader was dialed %d times, want 1", dials["next:61616"])
	}
}

// gatedWriter records each write; the first blocks until release closes.
type gatedWriter struct {
	mu      sync.Mutex
	writes  int
	data    bytes.Buffer
	release chan struct{}
	first   chan struct{}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.writes++
	n := g.writes
	g.data.Write(p)
	g.mu.Unlock()
	if n == 1 {
		close(g.first)
		<-g.release
	}
	return len(p), nil
}

// TestBatchWriterCoalesces: frames that wait behind a write go out
// together in one more write, each whole.
func TestBatchWriterCoalesces(t *testing.T) {
	g := &gatedWriter{release: make(chan struct{}), first: make(chan struct{})}
	w := newBatchWriter(g)
	const frames = 20
	frame := func(i int) []byte { return []byte(fmt.Sprintf("<frame %02d %s>", i, strings.Repeat("x", i))) }
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.write(frame(0)); err != nil {
			t.Error(err)
		}
	})
	<-g.first // frame 0 is being written and holds the writer
	for i := 1; i < frames; i++ {
		wg.Go(func() {
			if err := w.write(frame(i)[:5], frame(i)[5:]); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for w.waiting.Load() < frames-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writers waiting", w.waiting.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	if g.writes != 2 {
		t.Errorf("%d writes for %d frames, want the first and one for the rest", g.writes, frames)
	}
	got := g.data.String()
	for i := range frames {
		if strings.Count(got, string(frame(i))) != 1 {
			t.Fatalf("frame %d not whole once in %q", i, got)
		}
	}
	if len(got) != frames*len("<frame 00 >")+frames*(frames-1)/2 {
		t.Fatalf("%d bytes written", len(got))
	}
}
