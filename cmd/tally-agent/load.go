package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// loadReport is what load prints.
type loadReport struct {
	Devices      int     `json:"devices"`
	Connected    int     `json:"connected"`
	Onboarded    int     `json:"onboarded,omitempty"`
	Seconds      float64 `json:"seconds"`
	Checkouts    int64   `json:"checkouts"`
	Returns      int64   `json:"returns"`
	Denials      int64   `json:"denials"`
	Errors       int64   `json:"errors"`
	CheckoutsPS  float64 `json:"checkoutsPerSecond"`
	LatencyP50ms float64 `json:"latencyP50Ms"`
	LatencyP90ms float64 `json:"latencyP90Ms"`
	LatencyP99ms float64 `json:"latencyP99Ms"`
	// LatencyP999ms is the 99.9th percentile: with fewer than 1,000
	// requests it is the maximum.
	LatencyP999ms float64 `json:"latencyP999Ms"`
	LatencyMaxms  float64 `json:"latencyMaxMs"`
	FirstError    string  `json:"firstError,omitempty"`
}

// runLoad connects --devices devices with distinct hostids (each onboarded
// with --onboard-key when given); each loops checkout of count 1 then
// return for --duration. Latency is that of each
// request (checkout or return), measured at the device.
func runLoad(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	devices := fs.Int("devices", 10, "concurrent device connections")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	name := fs.String("feature", "reader", "feature to check out")
	ver := fs.String("version", "2022.01", "version to check out")
	verify := fs.Bool("verify", false, "verify every signature (costs the load generator CPU)")
	dialers := fs.Int("dialers", 64, "connections opened at once")
	onboardKey := fs.String("onboard-key", "", "onboard each device with this first-authentication key (a device key made in memory)")
	if err := fs.Parse(args); err != nil {
		return usagef("load: %s", err)
	}
	if fs.NArg() > 0 {
		return usagef("load takes flags only, not %q", fs.Arg(0))
	}
	if *devices < 1 || *devices > 1_000_000 || *duration <= 0 || *dialers < 1 {
		return usagef("load needs --devices from 1 to 1000000, a positive --duration and --dialers")
	}
	base, err := clientConfig(o)
	if err != nil {
		return err
	}
	base.SkipSignatureCheck = !*verify
	// With --server discover every device uses the first endpoint (the
	// leader's) and pins the licensing ID the offer was verified with.
	discoverCtx, cancelDiscover := context.WithTimeout(ctx, o.timeout)
	urls, identity, commit, err := serverURLs(discoverCtx, o, stderr)
	cancelDiscover()
	if err != nil {
		return err
	}
	url := urls[0]
	if identity != "" {
		base.VerifyFingerprint = identity
	}
	prefix := base.Hello.HostIDs[0].Value
	if o.hostid == "" {
		prefix += "-load"
	}

	// Connect every device first, so that the measured window is steady.
	clients := make([]*deviceproto.Client, *devices)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, *dialers)
	dialCtx, cancelDial := context.WithTimeout(context.Background(), time.Minute+*duration)
	defer cancelDial()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := base
			cfg.Hello.HostIDs = []deviceproto.HostID{{Value: fmt.Sprintf("%s-%d", prefix, i), Type: base.Hello.HostIDs[0].Type}}
			if *onboardKey != "" {
				// The device key follows from the onboarding key and the
				// hostid, so a device onboarded by an earlier run
				// authenticates instead of onboarding again.
				cfg.Key = loadDeviceKey(*onboardKey, cfg.Hello.HostIDs[0].Value)
			}
			c, err := deviceproto.Dial(dialCtx, url, cfg)
			if err != nil {
				fail(err)
				return
			}
			if *onboardKey != "" && !c.Authenticated() {
				if _, err := c.Onboard(dialCtx, *onboardKey); err != nil {
					fail(fmt.Errorf("onboard %s: %w", cfg.Hello.HostIDs[0].Value, err))
					c.Close()
					return
				}
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	rep := loadReport{Devices: *devices}
	for _, c := range clients {
		if c != nil {
			rep.Connected++
			if *onboardKey != "" {
				rep.Onboarded++
			}
		}
	}
	if rep.Connected == 0 {
		return fmt.Errorf("no device connected: %w", firstErr)
	}
	if err := commit(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	type tally struct {
		checkouts, returns, denials, errors int64
		lat                                 []time.Duration
	}
	results := make([]tally, len(clients))
	start := time.Now()
	end := start.Add(*duration)
	// A request cut off by the end of the run is not an error.
	counts := func(error) bool { return ctx.Err() == nil && time.Now().Before(end) }
	for i, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &results[i]
			want := deviceproto.FeatureRequest{Name: *name, Version: *ver, Count: 1}
			ref := deviceproto.FeatureRef{Name: *name, Version: *ver}
			for ctx.Err() == nil {
				t0 := time.Now()
				res, err := c.Checkout(ctx, want)
				if err != nil {
					if counts(err) {
						t.errors++
						fail(err)
					}
					if errors.Is(err, deviceproto.ErrClosed) || c.Err() != nil {
						return
					}
					continue
				}
				t.lat = append(t.lat, time.Since(t0))
				if len(res.Denials) > 0 {
					t.denials++
					continue
				}
				t.checkouts++
				t0 = time.Now()
				if _, err := c.Return(ctx, ref); err != nil {
					if counts(err) {
						t.errors++
						fail(err)
					}
					if c.Err() != nil {
						return
					}
					continue
				}
				t.lat = append(t.lat, time.Since(t0))
				t.returns++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Return what runs cut short still hold.
	cleanup, cancelCleanup := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelCleanup()
	for _, c := range clients {
		if c == nil || c.Err() != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c.Return(cleanup, deviceproto.FeatureRef{Name: *name, Version: *ver})
		}()
	}
	wg.Wait()
	var lat []time.Duration
	for _, t := range results {
		rep.Checkouts += t.checkouts
		rep.Returns += t.returns
		rep.Denials += t.denials
		rep.Errors += t.errors
		lat = append(lat, t.lat...)
	}
	slices.Sort(lat)
	ms := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
	}
	rep.Seconds = elapsed.Seconds()
	rep.CheckoutsPS = float64(rep.Checkouts) / elapsed.Seconds()
	rep.LatencyP50ms, rep.LatencyP90ms, rep.LatencyP99ms, rep.LatencyP999ms, rep.LatencyMaxms = ms(0.50), ms(0.90), ms(0.99), ms(0.999), ms(1)
	if firstErr != nil {
		rep.FirstError = oneLine(firstErr.Error())
	}
	if o.json {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "devices:      %d (%d connected)\n", rep.Devices, rep.Connected)
		if *onboardKey != "" {
			fmt.Fprintf(stdout, "onboarded:    %d\n", rep.Onboarded)
		}
		fmt.Fprintf(stdout, "duration:     %.1fs\n", rep.Seconds)
		fmt.Fprintf(stdout, "checkouts:    %d (%.0f/s), returns %d, denials %d, errors %d\n",
			rep.Checkouts, rep.CheckoutsPS, rep.Returns, rep.Denials, rep.Errors)
		fmt.Fprintf(stdout, "latency:      p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms\n",
			rep.LatencyP50ms, rep.LatencyP90ms, rep.LatencyP99ms, rep.LatencyP999ms, rep.LatencyMaxms)
	}
	if rep.Checkouts == 0 {
		if firstErr != nil {
			return fmt.Errorf("no checkout succeeded: %w", firstErr)
		}
		return errors.New("no checkout succeeded")
	}
	return nil
}

// loadDeviceKey is the Ed25519 key of a load device: derived from the
// onboarding key and the hostid, so that it is the same on every run.
func loadDeviceKey(onboardKey, hostid string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("tally-agent load/1\x00" + onboardKey + "\x00" + hostid))
	return ed25519.NewKeyFromSeed(seed[:])
}
