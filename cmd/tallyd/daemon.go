package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/password"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/raft"
	"github.com/tallyhq/tally/transport"
	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/webui"
)

// daemon is a running node: the store, the device handler and the HTTPS
// server in front of them.
type daemon struct {
	log          *slog.Logger
	nodeID       string // fixed at the first start, whatever the flags say
	id           *licensingid.ID
	node         *raft.Node
	cluster      *clusterSetup
	stopSync     context.CancelFunc
	syncDone     chan struct{}
	devices      *device.Handler
	presence     *presence
	api          *transport.Server
	stopWatch    context.CancelFunc // ends the history sampler and the cluster watch
	watchDone    chan struct{}      // closed when both have ended
	http         *http.Server
	listener     net.Listener
	url          string
	passwordNote string
	closeOnce    sync.Once
}

// demoSource names the rights that --dev installs.
const demoSource = "demo"

// forwardWait bounds how long a request on a follower waits for a leader:
// through an election, or while a node that just joined is being added.
const forwardWait = 30 * time.Second

// start opens the store and binds the HTTPS port; Serve is left to the caller.
// ctx bounds forming or joining a cluster.
func start(ctx context.Context, cfg config, log *slog.Logger, logs *logSwitch, getenv func(string) string) (*daemon, error) {
	err := ensureDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := prepareDataFormat(cfg.DataDir, log); err != nil {
		return nil, err
	}
	cfg.NodeID, err = nodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	id, err := loadIdentity(cfg.DataDir, now, rand.Reader)
	if err != nil {
		return nil, err
	}
	trusted, err := producerKeys(cfg)
	if err != nil {
		return nil, err
	}

	var cluster *clusterSetup
	var clusterConfig *raft.ClusterConfig
	if clusterMode(cfg) {
		if cluster, err = prepareCluster(ctx, cfg, now, log); err != nil {
			return nil, err
		}
		cluster.config.ForwardWait = forwardWait
		cluster.config.DeadServerTimeout, _ = cfg.deadServerTimeout() // checked by validate
		clusterConfig = cluster.config
	}

	// The device handler and the API need the store and the store tells
	// them what it applied, so the observer is wired once they exist.
	var notify atomic.Pointer[device.Handler]
	var events atomic.Pointer[transport.Server]
	var syncKick atomic.Pointer[syncer]
	// What the node says of itself in the cluster and licensing ID views:
	// its local licensing ID and, once known, the one it signs with.
	var signing atomic.Pointer[licensingid.ID]
	describe := func() map[string]string {
		info := map[string]string{core.InfoHost: hostname(cfg.NodeID), core.InfoLocalID: id.Fingerprint(), core.InfoLocalIDDisplay: id.Display()}
		if s := signing.Load(); s != nil {
			info[core.InfoSigningID] = s.Fingerprint()
		}
		return info
	}
	node, err := raft.Open(raft.Config{
		Cluster:  clusterConfig,
		Describe: describe,
		DataDir:  filepath.Join(cfg.DataDir, "raft"),
		NodeID:   cfg.NodeID,
		Logger:   log.With("part", "raft"),
		Observe: func(req core.Request, res core.Result) {
			// The events connections hear of every change, audit included.
			if api := events.Load(); api != nil {
				api.Notify(req, res)
			}
			// Administrative changes arrive wrapped with their actor; what
			// they change is the inner command.
			if a, ok := req.Command.(*core.Audited); ok {
				req.Command = a.Command
			}
			if p, ok := req.Command.(*core.SetProperty); ok {
				logs.set(p.Name, p.Value)
			}
			if _, ok := req.Command.(*core.BeginSync); ok {
				if s := syncKick.Load(); s != nil {
					s.begun()
				}
			}
			if h := notify.Load(); h != nil {
				h.Notify(req, res)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	d := &daemon{log: log, nodeID: cfg.NodeID, id: id, node: node, cluster: cluster}
	fail := func(err error) (*daemon, error) {
		d.close()
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := applyLoggingProperties(ctx, node, logs); err != nil {
		return fail(err)
	}
	if cluster != nil {
		if err := installClusterCA(ctx, node, cluster, log); err != nil {
			return fail(err)
		}
	}
	if d.passwordNote, err = bootstrapAccess(ctx, node, cfg.DataDir, getenv, rand.Reader); err != nil {
		return fail(err)
	}
	// What this node signs with and what rights are bound to is the
	// cluster's main licensing ID; on a new store it becomes this node's.
	main, err := mainLicensingID(ctx, node, id, cfg.NodeID)
	if err != nil {
		return fail(err)
	}
	d.id = main
	signing.Store(main)
	verifier := rights.NewVerifier(main.Fingerprint(), trusted...)
	sy := newSyncer(node, func() bool { return node.Status().State == "Leader" }, main,
		capability.NewVerifier(main.Fingerprint(), trusted...), cfg.Connectors, log.With("part", "backoffice"))
	syncKick.Store(sy)
	syncCtx, stopSync := context.WithCancel(context.Background())
	d.stopSync, d.syncDone = stopSync, make(chan struct{})
	go func() {
		defer close(d.syncDone)
		sy.run(syncCtx)
	}()
	if cfg.Dev && cfg.Join == "" {
		if err := installDemoRights(ctx, node, verifier, main.Fingerprint(), now); err != nil {
			return fail(err)
		}
	}

	cert, err := transport.LoadOrCreateCertificate(cfg.TLSCert, cfg.TLSKey, cfg.DataDir, certificateHosts(cfg), now, rand.Reader)
	if err != nil {
		return fail(err)
	}
	d.devices, err = device.NewHandler(device.Config{
		Store:       node,
		Signer:      main.Key,
		Certificate: main.Certificate,
		Fingerprint: main.Fingerprint(),
		NodeID:      cfg.NodeID,
		Logger:      log.With("part", "device"),
		Now:         time.Now,
		OnlineChanged: func() {
			if api := events.Load(); api != nil {
				api.OnlineChanged()
			}
		},
	})
	if err != nil {
		return fail(err)
	}
	notify.Store(d.devices)
	addr := net.JoinHostPort(cfg.Bind, fmt.Sprint(cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(fmt.Errorf("listen on %s: %w", addr, err))
	}
	httpsPort, _ := strconv.Atoi(portOf(ln))
	if d.presence, err = startPresence(cfg, main, httpsPort, memberServices(cfg.NodeID, cluster), log); err != nil {
		ln.Close()
		return fail(err)
	}
	apiCfg := transport.Config{
		Store:  node,
		Rights: verifier,
		// Offline capability responses are trusted from the same producer
		// keys as rights files.
		Capability: capability.NewVerifier(main.Fingerprint(), trusted...),
		Identity:   main,
		Hostname:   hostname(cfg.NodeID),
		Logger:     log.With("part", "api"),
		Now:        time.Now,
		Random:     rand.Reader,
		Version:    buildVersion,
		Build:      buildDescription(),
		NodeID:     cfg.NodeID,
		Leader:     func() bool { return node.Status().State == "Leader" },
		Devices:    d.devices,
		Online:     d.devices.Connected,
		Metrics:    []func(io.Writer){node.WriteMetrics, d.devices.WriteMetrics, func(w io.Writer) { d.presence.responder.WriteMetrics(w) }},
		// Scans, online checks and wakes go out from this node.
		Discovery:     d.presence.responder,
		DiscoveryPort: uint16(cfg.DiscoveryPort),
		WakeConn:      d.presence.wake,
		// A restored licensing ID becomes the main one in the store and
		// this node's local one in the data directory; it signs from the
		// next start.
		RestoreIdentity: (&identityRestorer{dataDir: cfg.DataDir, store: node, nodeID: cfg.NodeID}).restore,
		// Properties → General lists the machine's hostids.
		HostIDs: machineHostIDs(log.With("part", "api")),
		// The history counts the devices connected to this node.
		OnlineCount: d.devices.ConnectedDevices,
		// The admin web UI answers every path the API does not own.
		UI: webui.Handler(),
	}
	if cluster != nil {
		apiCfg.Cluster = node
	}
	api, err := transport.NewServer(apiCfg)
	if err != nil {
		ln.Close()
		return fail(err)
	}
	d.api = api
	events.Store(api)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	d.stopWatch, d.watchDone = stopWatch, make(chan struct{})
	var watches sync.WaitGroup
	watches.Add(2)
	go func() { defer watches.Done(); api.RunHistory(watchCtx) }()
	go func() {
		defer watches.Done()
		watchCluster(watchCtx, clusterPoll, func() string { return clusterShape(node) }, api.ClusterChanged)
	}()
	go func() { watches.Wait(); close(d.watchDone) }()

	d.http = httpServer(api.Handler(), cert, transport.TLSConfig, log)
	d.listener = tls.NewListener(ln, d.http.TLSConfig)
	host := cfg.Bind
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	d.url = "https://" + net.JoinHostPort(host, portOf(ln)) + "/"
	log.Info("serving", "url", d.url, "node", cfg.NodeID, "fingerprint", main.Fingerprint(), "admin_password", d.passwordNote)
	return d, nil
}

// bootstrapAccess prepares a store that has no users yet: it creates the
// administrator admin with the initial password (adminPassword says where
// it comes from) and installs a random token key when none is set. It
// returns where the admin password is, for the log; when users exist, the
// store is left alone and no password file is written.
func bootstrapAccess(ctx context.Context, store core.Store, dataDir string, getenv func(string) string, random io.Reader) (string, error) {
	// The audit log names tallyd for what it sets up itself.
	actor := core.Actor{User: "tallyd", Address: "local"}
	var haveUsers, haveKey bool
	err := store.Read(ctx, func(s *core.State) error {
		haveUsers, haveKey = len(s.Users()) > 0, len(s.TokenKey()) > 0
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the users: %w", err)
	}
	if !haveKey {
		key := make([]byte, core.TokenKeyLen)
		if _, err := io.ReadFull(random, key); err != nil {
			return "", fmt.Errorf("make the token key: %w", err)
		}
		if _, err := store.Apply(ctx, &core.Audited{Actor: actor, Command: &core.SetTokenKey{Key: key}}); err != nil {
			return "", fmt.Errorf("install the token key: %w", err)
		}
	}
	if haveUsers {
		return "unchanged (users exist)", nil
	}
	passwordFile := filepath.Join(dataDir, initialPasswordFile)
	_, statErr := os.Stat(passwordFile)
	pw, source, err := adminPassword(dataDir, getenv, random)
	if err != nil {
		return "", err
	}
	hash, err := password.Hash(pw, random)
	if err != nil {
		return "", err
	}
	create := &core.CreateUser{Name: "admin", Roles: []core.Role{core.RoleAdmin}, PasswordHash: hash}
	_, err = store.Apply(ctx, &core.Audited{Actor: actor, Command: create})
	if errors.Is(err, core.ErrUserExists) {
		// Nodes that formed a cluster together race to create the
		// administrator; a password this node made up is not its password.
		if source == passwordFile && errors.Is(statErr, fs.ErrNotExist) {
			os.Remove(passwordFile)
		}
		return "unchanged (another node created the administrator)", nil
	}
	if err != nil {
		return "", fmt.Errorf("create the administrator: %w", err)
	}
	if source == passwordFile {
		return "in " + source, nil
	}
	return "from " + source, nil
}

// hostname names this server in the licensing ID status: the machine's
// host name, or the node ID when it has none.
func hostname(nodeID string) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return nodeID
}

// producerKeys reads the producer public keys the node trusts; --dev adds
// the demo producer's.
func producerKeys(cfg config) ([]*ecdsa.PublicKey, error) {
	var keys []*ecdsa.PublicKey
	for _, path := range cfg.ProducerKeys {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--producer-key: %w", err)
		}
		k, err := rights.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--producer-key %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if cfg.Dev {
		keys = append(keys, &rights.DemoProducerKey().PublicKey)
	}
	return keys, nil
}

// installDemoRights signs the demo rights for this node with the demo
// producer key and loads them, as a producer's rights file would be. On
// later starts they are already there.
func installDemoRights(ctx context.Context, store core.Store, v *rights.Verifier, fingerprint string, now time.Time) error {
	file, err := rights.Issue(rights.DemoProducerKey(), rights.Rights{
		Server:   fingerprint,
		Source:   demoSource,
		Sequence: 1,
		Issued:   now.UTC(),
		Lines:    rights.DemoLines(now),
	}, rand.Reader)
	if err != nil {
		return fmt.Errorf("demo rights: %w", err)
	}
	load, err := v.Verify(file)
	if err != nil {
		return fmt.Errorf("demo rights: %w", err)
	}
	if _, err := store.Apply(ctx, load); err != nil && !errors.Is(err, core.ErrStaleRights) {
		return fmt.Errorf("demo rights: %w", err)
	}
	return nil
}

// applyLoggingProperties sets the log format and level from the replicated
// properties where an administrator has changed them.
func applyLoggingProperties(ctx context.Context, store core.Store, logs *logSwitch) error {
	return store.Read(ctx, func(s *core.State) error {
		for _, name := range []string{"logging.format", "logging.level"} {
			p, err := s.Property(name)
			if err != nil {
				return err
			}
			if p.Value != p.Default || name == "logging.level" {
				logs.set(name, p.Value)
			}
		}
		return nil
	})
}

// certificateHosts are the names a generated TLS certificate carries.
func certificateHosts(cfg config) []string {
	hosts := []string{}
	if ip := net.ParseIP(cfg.Bind); ip != nil && !ip.IsUnspecified() {
		hosts = append(hosts, cfg.Bind)
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// shutdown stops the server gracefully within grace.
func (d *daemon) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := d.http.Shutdown(ctx)
	d.close()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	d.log.Info("stopped")
	return nil
}

// close releases everything start acquired; it is safe to call twice.
func (d *daemon) close() {
	d.closeOnce.Do(func() {
		if d.stopSync != nil {
			d.stopSync()
			<-d.syncDone
		}
		if d.stopWatch != nil {
			d.stopWatch()
			<-d.watchDone
		}
		if d.api != nil {
			// The HTTP server's Shutdown leaves WebSockets open: the events
			// connections are told and closed here.
			d.api.Close()
		}
		if d.presence != nil {
			d.presence.close()
		}
		if d.devices != nil {
			d.devices.Close()
		}
		if d.listener != nil {
			d.listener.Close()
		}
		if err := d.node.Close(); err != nil {
			d.log.Error("close the store", "err", err)
		}
	})
}

// clusterPoll is how often watchCluster looks at the cluster.
const clusterPoll = 2 * time.Second

// watchCluster calls changed whenever look's description of the cluster
// differs from the one an interval before, until ctx ends. The raft node
// has no notification of role, leader or membership changes, and the admin
// UI's cluster view follows them over the events WebSocket.
func watchCluster(ctx context.Context, interval time.Duration, look func() string, changed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := look()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := look(); now != last {
			last = now
			changed()
		}
	}
}

// clusterShape describes what the cluster view shows that can change
// without a command: this node's role, the leader and the members.
func clusterShape(node *raft.Node) string {
	st := node.Status()
	shape := st.State + " " + st.Leader
	if members, err := node.Members(); err == nil {
		for _, m := range members {
			shape += fmt.Sprintf(" %s=%s/%v", m.ID, m.Address, m.Voter)
		}
	}
	return shape
}
