package plugins

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Spec says how to start one connector process.
type Spec struct {
	// Name identifies the connector in tallyd's log ("http", "acme").
	Name string
	// Command is the argv. A built-in connector is the running binary
	// re-executed (see BuiltinSpec); anything else is external.
	Command []string
	// SHA256 is the hex SHA-256 of an external connector's binary (colons
	// and upper case allowed). It is required for external connectors: a
	// binary that does not match is refused before it runs.
	SHA256 string
	// Env is the connector's environment, as KEY=VALUE. Nothing else of
	// tallyd's environment reaches it but the few variables in passEnv.
	Env []string
}

// BuiltinSpec is the Spec of a built-in connector: the running binary
// re-executed as "<binary> connector <args...>".
func BuiltinSpec(name string, args ...string) (Spec, error) {
	exe, err := os.Executable()
	if err != nil {
		return Spec{}, fmt.Errorf("built-in connector %s: %w", name, err)
	}
	return Spec{Name: name, Command: append([]string{exe, "connector"}, args...)}, nil
}

// Config tunes a Host. Zero fields take the defaults.
type Config struct {
	// Logger receives the host's log and the connector's, each record
	// with plugin=<name>. Default: slog.Default().
	Logger *slog.Logger
	// CallTimeout bounds every call, including the wait for a restarting
	// process. A call that runs out of it on a live process kills the
	// process, which is then restarted. Default 60s.
	CallTimeout time.Duration
	// StartTimeout bounds the start of a process up to its handshake.
	// Default 10s.
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart, which
	// doubles from one failed restart to the next. Defaults 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// HealthyAfter is how long a process must have run for the backoff to
	// start again from MinBackoff. Default 1m.
	HealthyAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDefault(&c.CallTimeout, 60*time.Second)
	setDefault(&c.StartTimeout, 10*time.Second)
	setDefault(&c.MinBackoff, 100*time.Millisecond)
	setDefault(&c.MaxBackoff, 30*time.Second)
	setDefault(&c.HealthyAfter, time.Minute)
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	return c
}

// passEnv lists the variables of tallyd's environment that a connector
// inherits: where to find programs and temporary space, the time zone, the
// system's CA certificates and proxies. Secrets such as the initial admin
// password stay behind.
var passEnv = [...]string{
	"PATH", "TMPDIR", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
}

// Status is what a Host shows about its connector.
type Status struct {
	Running   bool
	PID       int
	Restarts  int
	LastError string
}

// Host runs one connector process and is a Connector whose calls go to it.
// It restarts the process with backoff when it exits, hangs or breaks, and
// kills it on Close. A Host is safe for concurrent use.
type Host struct {
	spec     Spec
	cfg      Config
	log      *slog.Logger
	path     string
	checksum []byte // nil for a built-in connector

	mu       sync.Mutex
	cur      *instance     // nil while restarting
	changed  chan struct{} // closed and replaced when cur or closed change
	lastErr  error
	restarts int
	closed   bool

	quit chan struct{} // closed by Close
	done chan struct{} // closed when the supervisor has stopped
}

var _ Connector = (*Host)(nil)

// instance is one run of the connector process.
type instance struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	sockets string // the directory of the process's Unix socket
	conn    *grpcClient
	pid     int
	started time.Time
	// killed tells the log adapter that the host ends the process.
	killed *atomic.Bool

	failOnce sync.Once
	failed   chan struct{} // closed when a call found the process broken
	reason   error
}

// fail marks the instance for replacement.
func (in *instance) fail(reason error) {
	in.failOnce.Do(func() {
		in.reason = reason
		close(in.failed)
	})
}

// NewHost checks spec, starts the connector and returns its Host. A
// checksum mismatch (ErrChecksum) or a failed handshake (ErrHandshake) is
// returned here, and no process is left running.
func NewHost(spec Spec, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	h := &Host{
		spec:    spec,
		cfg:     cfg,
		log:     cfg.Logger.With("plugin", spec.Name),
		changed: make(chan struct{}),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := h.checkSpec(); err != nil {
		return nil, err
	}
	inst, err := h.start()
	if err != nil {
		return nil, err
	}
	h.cur = inst
	go h.supervise(inst)
	return h, nil
}

func (h *Host) checkSpec() error {
	s := h.spec
	if err := (Description{Name: s.Name}).validate(); err != nil {
		return err
	}
	if len(s.Command) == 0 || s.Command[0] == "" {
		return fmt.Errorf("%w: connector %s has no command", ErrInvalid, s.Name)
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%w: connector %s: environment entry %q is not KEY=VALUE", ErrInvalid, s.Name, kv)
		}
	}
	path, err := exec.LookPath(s.Command[0])
	if err != nil {
		return fmt.Errorf("connector %s: %w", s.Name, err)
	}
	if h.path, err = filepath.Abs(path); err != nil {
		return fmt.Errorf("connector %s: %w", s.Name, err)
	}
	if s.SHA256 == "" {
		if !isRunningBinary(h.path) {
			return fmt.Errorf("connector %s: %s: %w", s.Name, h.path, ErrNoChecksum)
		}
		return nil
	}
	sum, err := ParseSHA256(s.SHA256)
	if err != nil {
		return fmt.Errorf("connector %s: %w", s.Name, err)
	}
	h.checksum = sum
	return nil
}

// isRunningBinary reports whether path is this process's own executable,
// which is what a built-in connector runs.
func isRunningBinary(path string) bool {
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	a, errA := filepath.EvalSymlinks(exe)
	b, errB := filepath.EvalSymlinks(path)
	return errA == nil && errB == nil && a == b
}

func (h *Host) env() []string {
	var env []string
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, h.spec.Env...)
}

// start runs the connector process and completes the handshake.
func (h *Host) start() (*instance, error) {
	// The connector makes its socket in a directory of its own, removed
	// when it is killed: a SIGKILLed connector cannot remove the socket.
	sockets, err := os.MkdirTemp("", "tally-connector-")
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", h.spec.Name, err)
	}
	cmd := exec.Command(h.path, h.spec.Command[1:]...)
	cmd.Env = append(h.env(), plugin.EnvUnixSocketDir+"="+sockets)
	setParentDeathSignal(cmd)
	var secure *plugin.SecureConfig
	if h.checksum != nil {
		secure = &plugin.SecureConfig{Checksum: h.checksum, Hash: sha256.New()}
	}
	hclogger := newHCLogAdapter(h.log)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: versionedPlugins(nil),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     h.cfg.StartTimeout,
		Logger:           hclogger,
		SyncStdout:       newLineWriter(func(line string) { h.log.Info(line, "stream", "stdout") }),
		SyncStderr:       newLineWriter(func(line string) { h.log.Warn(line, "stream", "stderr") }),
	})
	rpc, err := client.Client()
	if err == nil {
		var raw any
		if raw, err = rpc.Dispense(PluginName); err == nil {
			inst := &instance{
				client:  client,
				cmd:     cmd,
				sockets: sockets,
				conn:    raw.(*grpcClient),
				pid:     cmd.Process.Pid,
				started: time.Now(),
				killed:  hclogger.killed,
				failed:  make(chan struct{}),
			}
			h.log.Info("connector started", "pid", inst.pid, "protocol", client.NegotiatedVersion())
			return inst, nil
		}
	}
	client.Kill()
	os.RemoveAll(sockets)
	return nil, h.startError(cmd, err)
}

// startError says why a start failed in terms of this package's errors.
func (h *Host) startError(cmd *exec.Cmd, err error) error {
	// go-plugin's message runs over several lines and ends in generic
	// advice; the lines before the advice say what happened.
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "This usually means") {
			break
		} else if line != "" {
			lines = append(lines, line)
		}
	}
	msg := strings.Join(lines, "; ")
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("connector %s: %s: %w; refused to start it", h.spec.Name, h.path, ErrChecksum)
	case cmd.Process == nil:
		return fmt.Errorf("connector %s: start %s: %s", h.spec.Name, h.path, msg)
	}
	return fmt.Errorf("connector %s: %w: %s", h.spec.Name, ErrHandshake, msg)
}

// kill ends an instance's process and go-plugin's hold on it.
func (h *Host) kill(inst *instance) {
	inst.killed.Store(true)
	if err := inst.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		h.log.Warn("killing connector", "pid", inst.pid, "error", err)
	}
	inst.client.Kill()
	os.RemoveAll(inst.sockets)
}

// supervise watches the running instance and replaces it when it exits or
// is found broken, waiting longer after each quick failure.
func (h *Host) supervise(inst *instance) {
	defer close(h.done)
	backoff := h.cfg.MinBackoff
	for {
		var reason error
		select {
		case <-h.quit:
			h.kill(inst)
			return
		case <-inst.conn.done:
			reason = errors.New("process exited")
		case <-inst.failed:
			reason = inst.reason
		}
		h.setCurrent(nil, fmt.Errorf("connector %s (pid %d): %w", h.spec.Name, inst.pid, reason))
		h.kill(inst)
		if time.Since(inst.started) >= h.cfg.HealthyAfter {
			backoff = h.cfg.MinBackoff
		}
		h.log.Warn("connector down; restarting", "pid", inst.pid, "reason", reason, "backoff", backoff)
		for inst = nil; inst == nil; {
			select {
			case <-h.quit:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, h.cfg.MaxBackoff)
			next, err := h.start()
			if err != nil {
				h.log.Error("connector restart failed", "error", err, "backoff", backoff)
				h.setCurrent(nil, err)
				continue
			}
			inst = next
			h.mu.Lock()
			h.restarts++
			h.mu.Unlock()
			h.setCurrent(inst, nil)
		}
	}
}

// setCurrent publishes the running instance (nil while restarting) and
// wakes the calls waiting for one.
func (h *Host) setCurrent(inst *instance, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur = inst
	if err != nil {
		h.lastErr = err
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// current waits for a running instance until ctx is done.
func (h *Host) current(ctx context.Context) (*instance, error) {
	for {
		h.mu.Lock()
		inst, closed, changed, lastErr := h.cur, h.closed, h.changed, h.lastErr
		h.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case inst != nil:
			return inst, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if lastErr == nil {
				return nil, ErrNotRunning
			}
			return nil, fmt.Errorf("%w: %w", ErrNotRunning, lastErr)
		}
	}
}

// call runs fn on the current process within the call timeout, and has
// the process replaced when the call finds it hung or broken.
func (h *Host) call(ctx context.Context, op string, fn func(context.Context, Connector) error) error {
	callCtx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	wrap := func(err error) error {
		return fmt.Errorf("connector %s: %s: %w", h.spec.Name, op, err)
	}
	inst, err := h.current(callCtx)
	if err != nil {
		if ctx.Err() != nil {
			return wrap(ctx.Err())
		}
		return wrap(err)
	}
	err = fn(callCtx, inst.conn)
	if _, isTransport := status.FromError(err); err == nil || !isTransport {
		// Success, an error the connector reported, or input refused
		// before it was sent.
		if err != nil {
			return wrap(err)
		}
		return nil
	}
	// The deadline travels with the call and the plugin's side may end the
	// call at it a moment before this side's timer fires: whose deadline
	// it was tells a caller giving up from a hung connector.
	deadline, _ := callCtx.Deadline()
	callerDeadline, ok := ctx.Deadline()
	callersDeadline := ok && !callerDeadline.After(deadline)
	timedOut := callCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded
	switch {
	case ctx.Err() != nil:
		// The caller gave up; that says nothing about the connector.
		return wrap(ctx.Err())
	case timedOut && callersDeadline:
		return wrap(context.DeadlineExceeded)
	case timedOut:
		inst.fail(fmt.Errorf("%s did not return within %v", op, h.cfg.CallTimeout))
		return wrap(fmt.Errorf("%w after %v; restarting it", ErrTimeout, h.cfg.CallTimeout))
	case status.Code(err) == codes.ResourceExhausted:
		return wrap(fmt.Errorf("%w: %v", ErrTooLarge, err))
	}
	inst.fail(err)
	return wrap(fmt.Errorf("%w: %v", ErrNotRunning, err))
}

// Describe asks the connector what it is.
func (h *Host) Describe(ctx context.Context) (Description, error) {
	var d Description
	err := h.call(ctx, "describe", func(ctx context.Context, c Connector) (err error) {
		d, err = c.Describe(ctx)
		return err
	})
	return d, err
}

// Exchange sends a signed capability request and returns the signed
// response, which the caller verifies.
func (h *Host) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	var resp []byte
	err := h.call(ctx, "exchange", func(ctx context.Context, c Connector) (err error) {
		resp, err = c.Exchange(ctx, request)
		return err
	})
	return resp, err
}

// RegisterLicensingID hands the licensing-ID certificate to the connector.
func (h *Host) RegisterLicensingID(ctx context.Context, certDER []byte) error {
	return h.call(ctx, "register licensing ID", func(ctx context.Context, c Connector) error {
		return c.RegisterLicensingID(ctx, certDER)
	})
}

// ReportUsage hands a signed usage report to the connector.
func (h *Host) ReportUsage(ctx context.Context, report []byte) error {
	return h.call(ctx, "report usage", func(ctx context.Context, c Connector) error {
		return c.ReportUsage(ctx, report)
	})
}

// Status reports whether the process runs, its PID, how often it was
// restarted and the last failure.
func (h *Host) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Status{Restarts: h.restarts}
	if h.cur != nil {
		s.Running, s.PID = true, h.cur.pid
	}
	if h.lastErr != nil {
		s.LastError = h.lastErr.Error()
	}
	return s
}

// Close kills the connector process and stops restarting it. Calls after
// Close return ErrClosed. A restart under way is let finish its handshake
// (at most StartTimeout) and then killed.
func (h *Host) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.quit)
		close(h.changed)
		h.changed = make(chan struct{})
	}
	h.mu.Unlock()
	<-h.done
	return nil
}
