// Command bench measures the targets of DESIGN.md section 8 and writes the
// report: bench/REPORT.md for people and bench/report.json for tools, with
// the machine (cores, memory, CPU model, kernel, Go), the commit and the
// date, and each figure beside its target marked met or missed.
//
//	go run ./deploy/bench [-out bench] [-short] [-count 3] [-duration 20s]
//	                      [-devices 1000] [-idle 100000] [-startup-devices 100000]
//	                      [-only LIST]
//
// The engine, the in-process WebSocket node, raft and discovery figures come
// from the existing Go benchmarks (go test -bench -json). Everything else
// runs the real binaries, built as make cross builds them: binary sizes for
// every target, the idle RSS of a started tallyd, checkouts over WebSocket
// against one node and against three nodes on this host (tally-agent load,
// p50/p99/p99.9), failover after kill -9 of the leader under load, idle TLS
// devices held open from several loopback source addresses, and start-up
// time with 100,000 devices of state (the idle connections' hellos, then
// more hellos from connections closed at once). Last, the
// in-process node and engine benchmarks run again under -cpuprofile and
// the top functions go beside the report (profile-NAME.txt).
//
// BENCH_SHORT=1 (or -short) makes every run small so the whole report takes
// a few minutes; BENCH_IDLE=N sets the idle connections. A figure measured
// with less than its target's size is marked extrapolated, never met. The
// load generator shares this machine's cores with the servers it measures;
// the report states the machine so the figures can be read against it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the flags of a run.
type options struct {
	out      string
	short    bool
	count    int
	duration time.Duration
	devices  int
	idle     int
	// startupDevices is the devices of state the start-up figure is
	// measured with.
	startupDevices int
	only           map[string]bool
	work           string
	bin            string // host binaries
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	only := ""
	flag.StringVar(&o.out, "out", "bench", "directory for REPORT.md and report.json")
	flag.BoolVar(&o.short, "short", os.Getenv("BENCH_SHORT") != "", "small runs that finish in a few minutes (also BENCH_SHORT=1)")
	flag.IntVar(&o.count, "count", 3, "runs of each Go benchmark (the median is reported)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long each WebSocket load runs")
	flag.IntVar(&o.devices, "devices", 1000, "devices of each WebSocket load")
	flag.IntVar(&o.idle, "idle", 100_000, "idle TLS device connections to open (also BENCH_IDLE)")
	flag.IntVar(&o.startupDevices, "startup-devices", 100_000, "devices of state for the start-up time")
	flag.StringVar(&only, "only", "", "comma-separated sections to run (gobench,sizes,rss,load1,load3,failover,idle,startup,profile); all when empty")
	flag.Parse()
	if v := os.Getenv("BENCH_IDLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("BENCH_IDLE=%q: want a positive number", v)
		}
		o.idle = n
	}
	if o.short {
		o.count = 1
		o.duration = min(o.duration, 5*time.Second)
		o.devices = min(o.devices, 200)
		if os.Getenv("BENCH_IDLE") == "" {
			o.idle = min(o.idle, 5000)
		}
		o.startupDevices = min(o.startupDevices, 10_000)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "tally-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	o.work = work
	raiseNoFile(o.idle + 20_000)

	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Commit: commit(), Machine: machineInfo(), Short: o.short}
	logf("commit %s, %s", rep.Commit, rep.Machine.Summary())
	sections := []struct {
		name string
		run  func(context.Context, *options, *report) error
	}{
		{"gobench", goBenchmarks},
		{"sizes", binarySizes},
		{"rss", idleRSS},
		{"load1", loadOneNode},
		{"load3", loadThreeNodes},
		{"failover", failover},
		{"idle", idleDevices}, // also startup: it restarts on the devices the idle run registered
		{"profile", profileHotPaths},
	}
	needBinaries := o.only == nil
	for k := range o.only {
		needBinaries = needBinaries || (k != "gobench" && k != "profile")
	}
	if needBinaries && !o.only["sizes"] && o.only != nil {
		o.only["sizes"] = true // the other sections run the binaries it builds
	}
	for _, s := range sections {
		if o.only != nil && !o.only[s.name] && !(s.name == "idle" && o.only["startup"]) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== %s", s.name)
		t0 := time.Now()
		if err := s.run(ctx, &o, rep); err != nil {
			logf("%s failed: %v", s.name, err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %s", s.name, oneLine(err.Error())))
		}
		logf("%s took %s", s.name, time.Since(t0).Round(time.Second))
	}
	rep.finish()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := rep.write(o.out); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(o.out, "REPORT.md"), filepath.Join(o.out, "report.json"))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// raiseNoFile lifts RLIMIT_NOFILE to want (as far as the kernel allows);
// the servers started later inherit it.
func raiseNoFile(want int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur >= uint64(want) {
		return
	}
	nrOpen := uint64(want)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			nrOpen = min(nrOpen, n)
		}
	}
	next := syscall.Rlimit{Cur: nrOpen, Max: max(lim.Max, nrOpen)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next) != nil {
		next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next)
	}
}

// noFile is the current RLIMIT_NOFILE.
func noFile() uint64 {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}
