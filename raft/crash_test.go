package raft

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
)

// crashDirEnv tells the re-executed test binary to run as the crash child
// in the named data directory.
const crashDirEnv = "TALLY_RAFT_CRASH_DIR"

// TestCrashChild is the process that TestCrashRecovery kills: it checks out
// leases from many goroutines and prints each grant once Apply has
// acknowledged it. It stops by itself after a few seconds.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	n, err := Open(Config{DataDir: dir, NodeID: "node-1", TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000 && ctx.Err() == nil; i++ {
				dev := device(t, devName(w*1000+i))
				if _, err := n.Apply(ctx, hello(dev)); err != nil {
					return
				}
				count := int64(i%3 + 1)
				res, err := n.Apply(ctx, checkout(dev, "cad", count))
				if err != nil {
					return
				}
				if res.Denied == core.NotDenied {
					out.Lock()
					fmt.Fprintf(os.Stdout, "ACK %s %d\n", dev.Value, res.Grant.Count)
					out.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrashRecovery kills a process in the middle of a burst of checkouts
// and reopens its data: every acknowledged grant is there, and the counts
// in use are exactly those the devices hold.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	const capacity, wantAcks = 600, 150
	dir := t.TempDir()
	n := open(t, dir, nil)
	apply(t, n, rights(capacity))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	acked := map[string]int64{}
	giveUp := time.After(time.Minute)
read:
	for len(acked) < wantAcks {
		select {
		case line, ok := <-lines:
			if !ok {
				break read
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "ACK" {
				continue
			}
			count, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			acked[f[1]] = count
		case <-giveUp:
			break read
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	go func() {
		for range lines {
		}
	}()
	cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged no grant")
	}
	t.Logf("killed the child after %d acknowledged grants", len(acked))

	n = open(t, dir, nil)
	err = n.Read(context.Background(), func(s *core.State) error {
		for value, count := range acked {
			d, err := s.Device(device(t, value))
			if err != nil {
				return fmt.Errorf("acknowledged device %s: %w", value, err)
			}
			if len(d.Leases) != 1 || d.Leases[0].Count != count {
				return fmt.Errorf("device %s was granted %d, holds %+v", value, count, d.Leases)
			}
		}
		var held int64
		for _, d := range s.Devices() {
			dd, err := s.Device(d.ID)
			if err != nil {
				return err
			}
			for _, l := range dd.Leases {
				held += l.Count
			}
		}
		cad := s.Features()[0]
		if cad.Name != "cad" || cad.Used != held || cad.Used > capacity || cad.OverdraftUsed != 0 {
			return fmt.Errorf("cad shows %+v, devices hold %d of %d", cad, held, capacity)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dev := device(t, "after-crash")
	apply(t, n, hello(dev))
	if res := apply(t, n, checkout(dev, "viewer", 2)); res.Grant.Count != 2 {
		t.Fatalf("checkout after the crash: %+v", res)
	}
}
