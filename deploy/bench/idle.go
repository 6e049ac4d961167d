package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// perSource is how many connections one loopback source address opens:
// below the 28,000 or so ephemeral ports of the default range.
const perSource = 25_000

// idleBudget is the memory the target gives 100,000 idle devices.
const idleBudget = 2 << 30

// idleDevices opens o.idle device connections to one --dev node from
// 127.0.0.2, 127.0.0.3, …, each saying hello and then nothing, and reads
// the node's VmRSS; twice: first with tallyd's own memory limit (on a
// machine with much memory, far above what the connections use), then
// with GOMEMLIMIT set to the 2 GiB of the target scaled down to the
// connections opened, as an appliance whose tallyd has 2 GiB would have
// it. Every hello registers a device, so the first node's data directory
// then holds that many devices: the start-up figure restarts it on them.
func idleDevices(ctx context.Context, o *options, r *report) error {
	want := o.idle
	if lim := int(noFile()) - 1000; want > lim {
		r.Notes = append(r.Notes, fmt.Sprintf("idle connections lowered from %d to %d: RLIMIT_NOFILE is %d and could not be raised "+
			"(raising the hard limit needs CAP_SYS_RESOURCE); tallyd inherits the limit, so one node could hold no more here", want, lim, noFile()))
		want = lim
	}
	n, err := startNode(o, "idle", "--dev")
	if err != nil {
		return err
	}
	defer n.stop()
	free, err := openIdle(ctx, o, n, want)
	if err != nil {
		return err
	}
	r.detail("idle", free)
	free.closeAll()
	if free.Opened == 0 {
		return fmt.Errorf("no idle device connected: %v", free.FirstError)
	}
	perConn := float64(free.RSSAfterKiB-free.RSSBeforeKiB) * 1024 / float64(free.Opened)
	r.add(figure{Target: "idle TLS devices, tallyd's own memory limit (" + gib(free.Limit) + " here)", Status: statusInfo,
		Source: fmt.Sprintf("%d TLS WebSocket devices (hello, then idle) to tallyd --dev as it starts (memory limit 3/4 of the machine's memory); VmRSS 10 s later", free.Opened),
		Got: fmt.Sprintf("%d connected, RSS %.0f MiB (%.1f KiB per connection); 100,000 would take about %.2f GiB", free.Opened, float64(free.RSSAfterKiB)/1024,
			perConn/1024, (float64(free.RSSBeforeKiB)*1024+perConn*100_000)/(1<<30)),
		Note: "the collector lets the heap grow to twice what is live (GOGC=100): the fastest setting, where memory is plentiful"})

	// The same with the 2 GiB budget, scaled to the connections opened.
	limit := int64(float64(idleBudget) * float64(want) / 100_000)
	ln, err := startNode(o, "idle-budget", "--dev")
	if err == nil {
		ln.stop() // the first start creates the data; the measured one runs with the limit
		ln.env = []string{fmt.Sprintf("GOMEMLIMIT=%d", limit)}
		err = ln.start(o)
	}
	if err != nil {
		return err
	}
	defer ln.stop()
	budget, err := openIdle(ctx, o, ln, want)
	if err != nil {
		return err
	}
	budget.closeAll()
	r.detail("idleBudget", budget)
	got := budget.Opened
	if got == 0 {
		return fmt.Errorf("no idle device connected with the memory limit: %v", budget.FirstError)
	}
	rss := float64(budget.RSSAfterKiB) * 1024
	at100k := rss * 100_000 / float64(got) / (1 << 30)
	cpu := fmt.Sprintf("tallyd used %.1f%% of a core in the 10 s idle", budget.IdleCPU*10)
	f := figure{Target: targetIdle, Want: ">= 100,000 within 2 GiB RSS", Value: at100k, Unit: "GiB at 100k",
		Source: fmt.Sprintf("%d TLS WebSocket devices (hello, then idle) from %d loopback source addresses, opened in %s, to tallyd with GOMEMLIMIT=%s "+
			"(2 GiB × %d/100,000); VmRSS of tallyd 10 s later", got, (got+perSource-1)/perSource, budget.OpenTime.Round(time.Second), mib(limit), want)}
	if got >= 100_000 && budget.StillOpen >= 100_000 {
		f.Got = fmt.Sprintf("%d connected, RSS %.2f GiB (%.1f KiB per connection)", budget.StillOpen, rss/(1<<30), rss/float64(got)/1024)
		f.Status = atMost(rss/(1<<30), 2)
		f.Note = cpu
	} else {
		f.Got = fmt.Sprintf("%d connected, RSS %.0f MiB (%.1f KiB per connection, all of the RSS counted); scaled to 100,000: %.2f GiB",
			got, rss/(1<<20), rss/float64(got)/1024, at100k)
		f.Status = statusExtrapolated
		if at100k > 2 {
			f.Status = statusMissed + " (extrapolated)"
		}
		f.Note = fmt.Sprintf("EXTRAPOLATED: the memory limit and the connections both scaled by %d/100,000 (see the notes for why fewer); the target needs a run of 100,000; %s",
			got, cpu)
	}
	if budget.StillOpen < got {
		f.Note += fmt.Sprintf("; only %d of the %d connections were still open when measured", budget.StillOpen, got)
	}
	if budget.Failed > 0 {
		f.Note += fmt.Sprintf("; %d connections failed: %v", budget.Failed, budget.FirstError)
	}
	r.add(f)
	ln.stop()

	devices := free.Opened
	// Start-up: the first node's data directory, now holding the
	// registered devices, from exec to health answering.
	if o.startupDevices > devices {
		logf("registering devices %d to %d for the start-up figure", devices, o.startupDevices)
		more, err := registerDevices(ctx, n, devices, o.startupDevices)
		devices += more
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("registering devices for start-up stopped at %d: %s", devices, oneLine(err.Error())))
		}
	}
	n.stop()
	return startup(ctx, o, r, n, devices)
}

// idleRun is one run of idle connections against a node.
type idleRun struct {
	Asked, Opened, StillOpen int
	Failed                   int64
	FirstError               any
	RSSBeforeKiB             int
	RSSAfterKiB              int
	OpenTime                 time.Duration
	// IdleCPU is the CPU seconds tallyd used in the 10 s after the last
	// connection opened.
	IdleCPU float64
	// Limit is the memory limit tallyd's log says it runs with.
	Limit   int64
	clients []*deviceproto.Client
}

// openIdle opens want connections to n, each saying hello, waits 10 s and
// reads n's VmRSS and CPU time. The connections stay open: closeAll.
func openIdle(ctx context.Context, o *options, n *node, want int) (*idleRun, error) {
	sleep(ctx, 3*time.Second)
	run := &idleRun{Asked: want, Limit: n.memoryLimit(o)}
	var err error
	if run.RSSBeforeKiB, err = n.rssKiB(); err != nil {
		return nil, err
	}
	limit := 10 * time.Minute
	if o.short {
		limit = 2 * time.Minute
	}
	openCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	run.clients = make([]*deviceproto.Client, want)
	var opened, failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range want {
		if openCtx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialFrom(openCtx, n, i)
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err.Error())
				}
				return
			}
			run.clients[i] = c
			if k := opened.Add(1); k%10_000 == 0 {
				logf("%s: %d idle devices connected", n.name, k)
			}
		}()
	}
	wg.Wait()
	run.OpenTime = time.Since(t0)
	cpu0, err := n.cpuSeconds()
	if err != nil {
		run.closeAll()
		return nil, err
	}
	sleep(ctx, 10*time.Second)
	cpu1, err := n.cpuSeconds()
	if err == nil {
		run.RSSAfterKiB, err = n.rssKiB()
	}
	if err != nil {
		run.closeAll()
		return nil, err
	}
	run.IdleCPU = cpu1 - cpu0
	run.Opened, run.Failed, run.FirstError = int(opened.Load()), failed.Load(), firstErr.Load()
	for _, c := range run.clients {
		if c != nil && c.Err() == nil {
			run.StillOpen++
		}
	}
	return run, nil
}

// memoryLimitLine is tallyd's log line that says its memory limit.
var memoryLimitLine = regexp.MustCompile(`msg="memory limit" limit=([0-9]+)`)

// memoryLimit returns the memory limit n's latest start logged; 0 when
// the log says none.
func (n *node) memoryLimit(o *options) int64 {
	b, _ := os.ReadFile(filepath.Join(o.work, n.name+".log"))
	m := memoryLimitLine.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
	return v
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func gib(b int64) string {
	if b <= 0 {
		return "none"
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}

// closeAll closes the run's connections.
func (run *idleRun) closeAll() {
	for _, c := range run.clients {
		if c != nil {
			c.Close()
		}
	}
}

// dialFrom connects device idle-i to n from loopback source address
// 127.0.0.2 + i/perSource, so that no source runs out of ports.
func dialFrom(ctx context.Context, n *node, i int) (*deviceproto.Client, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(i/perSource/250), byte(2+i/perSource%250))}
	cfg := deviceConfig(fmt.Sprintf("idle-%d", i))
	cfg.NetDialContext = (&net.Dialer{LocalAddr: src}).DialContext
	return deviceproto.Dial(ctx, n.ws(), cfg)
}

// registerDevices says hello as devices idle-from to idle-(to-1), closing
// each connection after its hello: each hello registers a device in n's
// state. It returns how many registered.
func registerDevices(ctx context.Context, n *node, from, to int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var ok atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := from; i < to && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialFrom(ctx, n, i)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			c.Close()
			if k := ok.Add(1); k%20_000 == 0 {
				logf("%d more devices registered", k)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return int(ok.Load()), fmt.Errorf("%v", e)
	}
	return int(ok.Load()), ctx.Err()
}

// startup restarts n on its data directory and times exec to a health
// answer.
func startup(ctx context.Context, o *options, r *report, n *node, devices int) error {
	port := "0"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		ln.Close()
	}
	args := []string{"--data-dir", n.dir, "--bind", "127.0.0.1", "--https-port", port, "--discovery-port", "0", "--node-id", n.name, "--dev"}
	cmd := exec.Command(filepath.Join(o.bin, "tallyd"), args...)
	cmd.Env = append(os.Environ(), "TALLY_ADMIN_PASSWORD="+adminPassword)
	url := "https://127.0.0.1:" + port
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var took time.Duration
	for deadline := t0.Add(3 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
		if healthy(url) {
			took = time.Since(t0)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took == 0 {
		return fmt.Errorf("tallyd on %d devices did not answer health within 3 minutes", devices)
	}
	f := figure{Target: targetStartup, Want: "measured (no number in DESIGN.md)", Got: fmt.Sprintf("%.2f s with %d devices", took.Seconds(), devices),
		Value: took.Seconds(), Unit: "s", Status: statusInfo,
		Source: "exec of tallyd --dev on a data directory whose devices each said hello over the device protocol, to GET /api/v1/health answering 200"}
	if devices < 100_000 {
		f.Status = statusExtrapolated
		f.Note = fmt.Sprintf("only %d devices of state (short run or -startup-devices); not the 100,000 of the target", devices)
	} else {
		f.Status = statusMeasured
	}
	r.add(f)
	return nil
}
