package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	nodes       int
	duration    time.Duration
	hold        time.Duration
	devices     int
	races       int
	contenders  int
	feature     string
	version     string
	image       string
	upgradeFrom string
	out         string
	checkTime   time.Duration
	keep        bool
	diskFull    bool
	opTimeout   time.Duration
	nemeses     string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.nodes, "nodes", 3, "cluster size (3 or 5)")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Minute, "how long nemeses are started for")
	flag.DurationVar(&cfg.hold, "hold", 8*time.Second, "how long each fault lasts")
	flag.IntVar(&cfg.devices, "devices", 8, fmt.Sprintf("simulated devices checking out (at most %d)", maxDevices))
	flag.IntVar(&cfg.races, "key-races", 6, "one-time keys raced for during the run")
	flag.IntVar(&cfg.contenders, "contenders", 3, "devices racing for each one-time key")
	flag.StringVar(&cfg.feature, "feature", "solver", "the counted feature of the demo rights the devices share")
	flag.StringVar(&cfg.version, "version", "1.0", "its version")
	flag.StringVar(&cfg.image, "image", "tally:latest", "the image to test")
	flag.StringVar(&cfg.upgradeFrom, "upgrade-from", "", "start on this (previous release's) image and upgrade to -image node by node")
	flag.StringVar(&cfg.out, "out", "chaos-out", "directory for the run's summary and history")
	flag.DurationVar(&cfg.checkTime, "check-timeout", 3*time.Minute, "bound on porcupine's check")
	flag.BoolVar(&cfg.diskFull, "disk-full", true, "give the last node a 512 MB loop-mounted /data and fill it as a nemesis (needs mount and loop devices)")
	flag.DurationVar(&cfg.opTimeout, "op-timeout", 5*time.Second, "how long a device waits for an answer before it gives up, reconnects and goes on")
	flag.StringVar(&cfg.nemeses, "nemeses", strings.Join(nemesisKinds, ","), "the nemeses to cycle through, comma-separated")
	flag.BoolVar(&cfg.keep, "keep", false, "leave the containers, network and volumes behind")
	recheck := flag.String("recheck", "", "check a kept history.json again (with -capacity) instead of running")
	recheckCapacity := flag.Int64("capacity", 4, "the feature's capacity, for -recheck")
	flag.Parse()
	if *recheck != "" {
		os.Exit(recheckHistory(*recheck, *recheckCapacity, cfg.checkTime))
	}
	if cfg.devices < 1 || cfg.devices > maxDevices || cfg.nodes < 3 {
		log.Fatalf("chaos: -devices must be 1..%d and -nodes at least 3", maxDevices)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	anomalies, err := run(ctx, cfg)
	if err != nil {
		log.Printf("chaos: %v", err)
		os.Exit(2)
	}
	if anomalies > 0 {
		log.Printf("chaos: %d anomalies", anomalies)
		os.Exit(1)
	}
}

// summary is what a run writes.
type summary struct {
	Run          string                    `json:"run"`
	Image        string                    `json:"image"`
	UpgradedFrom string                    `json:"upgradedFrom,omitempty"`
	Nodes        int                       `json:"nodes"`
	Devices      int                       `json:"devices"`
	Feature      string                    `json:"feature"`
	Capacity     int64                     `json:"capacity"`
	Start        time.Time                 `json:"start"`
	End          time.Time                 `json:"end"`
	Duration     string                    `json:"duration"`
	Operations   map[string]map[string]int `json:"operations"`
	Faults       []fault                   `json:"faults"`
	KeyRaces     []keyRace                 `json:"keyRaces"`
	Polls        int                       `json:"featurePolls"`
	PollFailures int                       `json:"featurePollFailures"`
	Checks       []check                   `json:"checks"`
	Anomalies    []string                  `json:"anomalies"`
	NotDone      []string                  `json:"notDone"`
	Error        string                    `json:"error,omitempty"`
}

func run(ctx context.Context, cfg config) (int, error) {
	runID := fmt.Sprintf("chaos%s%s", time.Now().UTC().Format("0102-1504"), randomHex(2))
	dir := filepath.Join(cfg.out, runID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	logFile, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	var logMu sync.Mutex
	began := time.Now()
	logf := func(format string, args ...any) {
		line := fmt.Sprintf("%s %7.1fs  %s\n", time.Now().UTC().Format("15:04:05.000"), time.Since(began).Seconds(), fmt.Sprintf(format, args...))
		logMu.Lock()
		defer logMu.Unlock()
		os.Stderr.WriteString(line)
		logFile.WriteString(line)
	}
	sum := &summary{Run: runID, Image: cfg.image, UpgradedFrom: cfg.upgradeFrom, Nodes: cfg.nodes, Devices: cfg.devices, Feature: cfg.feature + " " + cfg.version, Start: began.UTC()}
	sum.NotDone = []string{
		"clock skew: containers share the host kernel's clock (no time namespace for CLOCK_REALTIME), and a static Go binary FROM scratch cannot be given libfaketime, so a per-node skew cannot be applied here",
	}
	if !cfg.diskFull {
		sum.NotDone = append(sum.NotDone, "disk-full: not injected (-disk-full=false)")
	}
	if cfg.upgradeFrom == "" {
		sum.NotDone = append(sum.NotDone, "rolling upgrade: not run (give -upgrade-from with the previous release's image)")
	}
	finish := func(runErr error) (int, error) {
		sum.End = time.Now().UTC()
		sum.Duration = sum.End.Sub(sum.Start).Round(time.Second).String()
		for _, c := range sum.Checks {
			if !c.OK {
				sum.Anomalies = append(sum.Anomalies, c.Name+": "+c.Detail)
			}
		}
		if runErr != nil {
			sum.Error = runErr.Error()
		}
		if err := writeJSON(filepath.Join(dir, "summary.json"), sum); err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(sum.markdown()), 0o644); err != nil {
			return 0, err
		}
		logf("summary in %s: %d anomalies", dir, len(sum.Anomalies))
		return len(sum.Anomalies), runErr
	}

	startImage := cfg.image
	if cfg.upgradeFrom != "" {
		startImage = cfg.upgradeFrom
	}
	c, err := newCluster(ctx, runID, cfg.image, cfg.nodes)
	if err != nil {
		return finish(err)
	}
	last := c.nodes[len(c.nodes)-1]
	if !cfg.keep {
		defer func() {
			if err := cleanup(runID); err != nil {
				logf("%v", err)
			} else {
				logf("removed the containers, network and volumes labelled %s=%s", labelKey, runID)
			}
			if last.disk != nil {
				if err := last.disk.remove(); err != nil {
					logf("small disk: %v", err)
				}
			}
		}()
	}
	if cfg.diskFull {
		if last.disk, err = newSmallDisk(ctx, runID, 512<<20); err != nil {
			return finish(fmt.Errorf("small disk for %s: %w", last.id, err))
		}
		logf("%s keeps its data on a 512 MB file system at %s", last.id, last.disk.dir)
	}
	logf("run %s: %d nodes of %s on %s.0/24", runID, cfg.nodes, startImage, c.subnet)
	for _, n := range c.nodes {
		if err := c.start(ctx, n, startImage); err != nil {
			return finish(err)
		}
	}
	a := newAPI(c.password)
	nm := &nemesis{c: c, api: a, hold: cfg.hold, upgrade: cfg.image, r: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), logf: logf}
	leader, err := nm.waitStable(ctx, 3*time.Minute)
	if err != nil {
		return finish(fmt.Errorf("the cluster did not form: %w", err))
	}
	logf("formed: leader %s", leader.id)

	// The feature's capacity, as every node agrees it.
	var capacity int64 = -1
	err = retry(ctx, time.Minute, func() error {
		fs, err := a.features(ctx, leader.ip)
		if err != nil {
			return err
		}
		for _, f := range fs {
			if f.Name == cfg.feature && f.Version == cfg.version && f.Counted {
				capacity = f.Total + f.Overdraft
				return nil
			}
		}
		return fmt.Errorf("no counted feature %s %s in %v", cfg.feature, cfg.version, fs)
	})
	if err != nil {
		return finish(err)
	}
	sum.Capacity = capacity
	var keys []oneTimeKey
	err = retry(ctx, time.Minute, func() error {
		keys, err = a.createKeys(ctx, leader.ip, cfg.races)
		return err
	})
	if err != nil {
		return finish(fmt.Errorf("create one-time keys: %w", err))
	}
	logf("%s %s has capacity %d; %d one-time keys created", cfg.feature, cfg.version, capacity, len(keys))

	// The load and the watcher run until the nemeses are done.
	loadCtx, stopLoad := context.WithCancel(ctx)
	fl := &fleet{run: runID, feature: cfg.feature, version: cfg.version, devices: cfg.devices,
		nodes: func() []*node { return c.nodes }, start: began, opTimeout: cfg.opTimeout}
	w := &watcher{api: a, nodes: c.nodes}
	var wg sync.WaitGroup
	for d := range cfg.devices {
		wg.Add(1)
		go func() { defer wg.Done(); fl.runDevice(loadCtx, d) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.run(loadCtx) }()
	var races []keyRace
	var racesMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := cfg.duration / time.Duration(max(len(keys), 1))
		for i, k := range keys {
			sleep(loadCtx, every/2)
			if loadCtx.Err() != nil {
				return
			}
			r := race(loadCtx, runID, i, k, c.nodes, cfg.contenders)
			racesMu.Lock()
			races = append(races, r)
			racesMu.Unlock()
			var outcomes []string
			for _, ct := range r.Contenders {
				outcomes = append(outcomes, ct.Node+":"+ct.Outcome)
			}
			logf("key race %d: %s", i, strings.Join(outcomes, ", "))
			sleep(loadCtx, every/2)
		}
	}()

	sleep(ctx, 5*time.Second)
	kinds := strings.Split(cfg.nemeses, ",")
	if !cfg.diskFull {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k == "disk-full" })
	}
	if cfg.upgradeFrom != "" {
		kinds = append([]string{"rolling-upgrade"}, kinds...)
	}
	deadline := time.Now().Add(cfg.duration)
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if i == len(kinds) && cfg.upgradeFrom != "" {
			kinds = kinds[1:] // upgrade once
			i = 0
		}
		f := nm.apply(ctx, kinds[i%len(kinds)])
		sum.Faults = append(sum.Faults, f)
		logf("served %d operations so far (%d unknown)", fl.completed.Load(), fl.unknown.Load())
		sleep(ctx, 3*time.Second)
	}
	if ctx.Err() != nil {
		stopLoad()
		wg.Wait()
		return finish(ctx.Err())
	}
	// Quiet load after the last heal, then stop.
	sleep(ctx, 5*time.Second)
	stopLoad()
	wg.Wait()
	logf("load stopped: %d operations acknowledged, %d unknown", fl.completed.Load(), fl.unknown.Load())

	sum.Operations = map[string]map[string]int{}
	for _, h := range fl.history {
		k := h.Input.Kind
		if sum.Operations[k] == nil {
			sum.Operations[k] = map[string]int{}
		}
		switch {
		case h.Output.Unknown:
			sum.Operations[k]["unknown"]++
		case h.Output.Granted:
			sum.Operations[k]["granted"]++
		default:
			sum.Operations[k]["denied "+h.Output.Reason]++
		}
	}
	sum.KeyRaces = races
	w.mu.Lock()
	sum.Polls, sum.PollFailures = w.polls, w.failures
	over := check{Name: "never over-allocated", OK: len(w.violations) == 0,
		Detail: fmt.Sprintf("%d polls of every node's features, %d failed during faults", w.polls, w.failures)}
	if !over.OK {
		over.Detail = strings.Join(w.violations, "; ")
	}
	w.mu.Unlock()
	if err := writeJSON(filepath.Join(dir, "history.json"), fl.history); err != nil {
		return finish(err)
	}

	if err := nm.healAll(ctx); err != nil {
		logf("heal: %v", err)
	}
	if _, err := nm.waitStable(ctx, 2*time.Minute); err != nil {
		return finish(err)
	}
	conv := waitConverged(ctx, a, c.nodes, 90*time.Second)
	logf("check %s: %v %s", conv.Name, conv.OK, conv.Detail)
	sum.Checks = append(sum.Checks, over, conv)
	for _, chk := range []func() check{
		func() check { return checkLeases(ctx, a, c.nodes, fl) },
		func() check { return checkKeys(ctx, a, c.nodes, races) },
		func() check { return checkAudit(ctx, a, c.nodes) },
		func() check { return checkLinearizable(fl, capacity, dir, cfg.checkTime, false) },
		func() check { return checkLinearizable(fl, capacity, dir, cfg.checkTime, true) },
	} {
		r := chk()
		logf("check %s: %v %s", r.Name, r.OK, r.Detail)
		sum.Checks = append(sum.Checks, r)
	}
	return finish(nil)
}

// recheckHistory runs both linearizability checks on a kept history.
func recheckHistory(path string, capacity int64, timeout time.Duration) int {
	data, err := os.ReadFile(path)
	if err != nil {
		log.Print(err)
		return 2
	}
	fl := &fleet{}
	if err := json.Unmarshal(data, &fl.history); err != nil {
		log.Print(err)
		return 2
	}
	bad := 0
	for _, session := range []bool{false, true} {
		c := checkLinearizable(fl, capacity, filepath.Dir(path), timeout, session)
		fmt.Printf("%s: ok=%v %s\n", c.Name, c.OK, c.Detail)
		if !c.OK {
			bad++
		}
	}
	return bad
}

func retry(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		sleep(ctx, time.Second)
	}
}

func (s *summary) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos run %s\n\n", s.Run)
	fmt.Fprintf(&b, "- image: %s", s.Image)
	if s.UpgradedFrom != "" {
		fmt.Fprintf(&b, " (started on %s, upgraded node by node)", s.UpgradedFrom)
	}
	fmt.Fprintf(&b, "\n- cluster: %d nodes; %d devices on %s (capacity %d)\n", s.Nodes, s.Devices, s.Feature, s.Capacity)
	fmt.Fprintf(&b, "- %s to %s (%s)\n", s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339), s.Duration)
	if s.Error != "" {
		fmt.Fprintf(&b, "- **run failed**: %s\n", s.Error)
	}
	fmt.Fprintf(&b, "- **anomalies: %d**\n\n", len(s.Anomalies))
	for _, a := range s.Anomalies {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	if len(s.Anomalies) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("## Operations\n\n| kind | outcome | count |\n|---|---|---|\n")
	var kinds []string
	for k := range s.Operations {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		var outs []string
		for o := range s.Operations[k] {
			outs = append(outs, o)
		}
		sort.Strings(outs)
		for _, o := range outs {
			fmt.Fprintf(&b, "| %s | %s | %d |\n", k, o, s.Operations[k][o])
		}
	}
	b.WriteString("\n## Faults\n\n| fault | targets | start | healed | recovered | note | error |\n|---|---|---|---|---|---|---|\n")
	for _, f := range s.Faults {
		rec := "-"
		if !f.Recovered.IsZero() {
			rec = f.Recovered.Format("15:04:05.0")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Name, strings.Join(f.Targets, ", "),
			f.Start.Format("15:04:05.0"), f.Healed.Format("15:04:05.0"), rec, f.Note, f.Error)
	}
	b.WriteString("\n## One-time key races\n\n")
	for _, r := range s.KeyRaces {
		var cs []string
		for _, c := range r.Contenders {
			cs = append(cs, fmt.Sprintf("%s via %s: %s", c.Device, c.Node, c.Outcome))
		}
		fmt.Fprintf(&b, "- key %s at %s: %s\n", r.Key, r.At.Format("15:04:05.0"), strings.Join(cs, "; "))
	}
	b.WriteString("\n## Checks\n\n")
	for _, c := range s.Checks {
		mark := "ok"
		if !c.OK {
			mark = "**FAILED**"
		}
		fmt.Fprintf(&b, "- %s — %s: %s\n", c.Name, mark, c.Detail)
	}
	fmt.Fprintf(&b, "\nFeature polls: %d answered, %d failed (during faults).\n", s.Polls, s.PollFailures)
	b.WriteString("\n## Not done here\n\n")
	for _, n := range s.NotDone {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}
