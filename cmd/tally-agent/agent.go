package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
	"github.com/tallyhq/tally/transport/discovery"
)

// options are the global flags.
type options struct {
	server      string
	ca          string
	fingerprint string
	insecure    bool
	identity    string
	hostid      string
	hostidType  string
	alias       string
	deviceType  string
	json        bool
	timeout     time.Duration
	borrow      time.Duration
	keyFile     string

	// Discovery, for --server discover and the discover command.
	targets          targetsFlag
	discoveryPort    uint16
	discoveryTimeout time.Duration
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usage = `usage: tally-agent [--server wss://HOST:8443 | discover] [--ca FILE | --fingerprint FP | --insecure]
                   [--identity FP] [--hostid VALUE --hostid-type TYPE --alias A] [--key-file FILE]
                   [--borrow D] [--target HOST[:PORT]]... [--discovery-port 30005]
                   [--discovery-timeout D] [--json] COMMAND
commands: hello | onboard --key KEY | checkout NAME VERSION COUNT | renew NAME VERSION COUNT
          | return NAME [VERSION] | status
          | discover [--timeout D] [--mdns] [--target HOST[:PORT]]... [--discovery-port P]
          | listen [--port 30005] [--bind IP] [--no-hw]
          | load --devices N --duration D [--feature NAME --version V] [--onboard-key KEY]
--server discover finds the server on the LAN first (UDP DISCOVER to 255.255.255.255, each
interface's broadcast and every --target) and connects to the leader's endpoint, then the
others; the device protocol pins the licensing ID the OFFER was verified with (--identity, or
the one pinned on first use in $HOME/.tally-agent/server.fingerprint). The OFFER does not carry
the TLS certificate: give --ca, --fingerprint or --insecure as with any --server (else the
system roots are used).`

// run runs the agent with args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run ending listen (and cutting other commands short) when
// ctx ends.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tally-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o options
	fs.StringVar(&o.server, "server", "wss://localhost:8443", "server URL")
	fs.StringVar(&o.ca, "ca", "", "PEM file of CA certificates that sign the server's TLS certificate")
	fs.StringVar(&o.fingerprint, "fingerprint", "", "SHA-256 fingerprint of the server's TLS certificate to pin")
	fs.BoolVar(&o.insecure, "insecure", false, "accept any TLS certificate")
	fs.StringVar(&o.identity, "identity", "", "fingerprint of the licensing identity to pin")
	fs.StringVar(&o.hostid, "hostid", "", "device hostid value (default: the host name)")
	fs.StringVar(&o.hostidType, "hostid-type", "STRING", "hostid type: ETHERNET, UUID, SERIAL, STRING or USER")
	fs.StringVar(&o.alias, "alias", "", "device alias")
	fs.StringVar(&o.deviceType, "device-type", deviceproto.DeviceUnknown, "PHYSICAL, VIRTUAL or UNKNOWN")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of a command (not of load)")
	fs.DurationVar(&o.borrow, "borrow", 0, "lease length to ask for in checkout and renew, whole seconds (default: the server's)")
	fs.StringVar(&o.keyFile, "key-file", "", "the device key (PKCS#8 PEM; default $HOME/.tally-agent/HOSTID.key)")
	fs.Var(&o.targets, "target", "with --server discover, also send DISCOVER to HOST[:PORT] (repeatable)")
	discoveryPort := fs.Uint("discovery-port", discovery.DefaultPort, "UDP port of the servers' discovery")
	fs.DurationVar(&o.discoveryTimeout, "discovery-timeout", discovery.DefaultDiscoverTimeout, "how long --server discover listens for offers")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "tally-agent: %s\n", oneLine(err.Error()))
		return 2
	}
	if o.borrow < 0 || (o.borrow > 0 && o.borrow < time.Second) {
		fmt.Fprintf(stderr, "tally-agent: --borrow %s: give at least one second\n", o.borrow)
		return 2
	}
	if *discoveryPort == 0 || *discoveryPort > 65535 || o.discoveryTimeout <= 0 {
		fmt.Fprintf(stderr, "tally-agent: --discovery-port must be from 1 to 65535 and --discovery-timeout positive\n")
		return 2
	}
	o.discoveryPort = uint16(*discoveryPort)
	err := explainAuth(dispatch(ctx, o, fs.Args(), stdout, stderr))
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "tally-agent: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func dispatch(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("no command; try hello, onboard, checkout, renew, return, status, discover, listen or load")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "load":
		return runLoad(ctx, o, args, stdout, stderr)
	case "onboard":
		return runOnboard(ctx, o, args, stdout, stderr)
	case "listen":
		return runListen(ctx, o, args, stdout, stderr)
	case "discover":
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return runDiscover(ctx, o, args, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	wantArgs := map[string][2]int{"hello": {0, 0}, "status": {0, 0}, "checkout": {3, 3}, "renew": {3, 3}, "return": {1, 2}}
	n, ok := wantArgs[cmd]
	if !ok {
		return usagef("unknown command %q", cmd)
	}
	if len(args) < n[0] || len(args) > n[1] {
		return usagef("%s takes %s", cmd, map[string]string{"hello": "no arguments", "status": "no arguments",
			"checkout": "NAME VERSION COUNT", "renew": "NAME VERSION COUNT", "return": "NAME [VERSION]"}[cmd])
	}
	var count int64
	if cmd == "checkout" || cmd == "renew" {
		c, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil || c < 0 {
			return usagef("COUNT %q is not a whole number of zero or more", args[2])
		}
		count = c
	}
	cfg, err := clientConfig(o)
	if err != nil {
		return err
	}
	if o.server != serverDiscover {
		if _, err := deviceURL(o.server); err != nil {
			return err
		}
	}
	if cfg.Key, err = existingDeviceKey(o, cfg.Hello); err != nil {
		return err
	}
	c, err := connect(ctx, o, cfg, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	switch cmd {
	case "hello":
		return printWelcome(stdout, c.Welcome(), o.json)
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return printStatus(stdout, st, o.json)
	case "checkout", "renew":
		f := deviceproto.FeatureRequest{Name: args[0], Version: args[1], Count: count, BorrowSeconds: int64(o.borrow / time.Second)}
		var res *deviceproto.CapabilityResponse
		if cmd == "checkout" {
			res, err = c.Checkout(ctx, f)
		} else {
			res, err = c.Renew(ctx, f)
		}
		if err != nil {
			return err
		}
		return printResponse(stdout, res, o.json)
	default: // return
		refs := []deviceproto.FeatureRef{{Name: args[0]}}
		if len(args) == 2 {
			refs[0].Version = args[1]
		} else {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			refs = refs[:0]
			for _, l := range st.Leases {
				if l.Feature == args[0] {
					refs = append(refs, deviceproto.FeatureRef{Name: l.Feature, Version: l.Version})
				}
			}
			if len(refs) == 0 {
				return fmt.Errorf("the device holds no %s", args[0])
			}
		}
		res, err := c.Return(ctx, refs...)
		if err != nil {
			return err
		}
		return printResponse(stdout, res, o.json)
	}
}

// runOnboard onboards the device with a first-authentication key. The
// device key comes from the key file; when there is none, a new ECDSA
// P-256 key is made and saved (mode 0600) before the server is asked, so a
// device is never onboarded with a key that was not kept.
func runOnboard(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("onboard", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	secret := fs.String("key", "", "the first-authentication key")
	if err := fs.Parse(args); err != nil {
		return usagef("onboard: %s", err)
	}
	if fs.NArg() > 0 || *secret == "" {
		return usagef("onboard takes --key KEY")
	}
	cfg, err := clientConfig(o)
	if err != nil {
		return err
	}
	if o.server != serverDiscover {
		if _, err := deviceURL(o.server); err != nil {
			return err
		}
	}
	device, path, err := onboardWith(ctx, o, cfg, *secret, func(ctx context.Context, cfg deviceproto.ClientConfig) (*deviceproto.Client, error) {
		return connect(ctx, o, cfg, stderr)
	})
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(stdout, map[string]string{"device": device, "keyFile": path})
	}
	fmt.Fprintln(stdout, device)
	return nil
}

// onboardWith onboards the device with secret over the connection dial
// makes, within --timeout, and returns the device as the server named it
// and the device key file. The device key
// comes from the key file; when there is none, a new key is made and saved
// before the server is asked.
func onboardWith(ctx context.Context, o options, cfg deviceproto.ClientConfig, secret string,
	dial func(context.Context, deviceproto.ClientConfig) (*deviceproto.Client, error)) (device, path string, err error) {
	path, _, err = keyFilePath(o, cfg.Hello)
	if err != nil {
		return "", "", err
	}
	key, err := readDeviceKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createDeviceKey(path)
	}
	if err != nil {
		return "", "", err
	}
	cfg.Key, cfg.ManualAuthentication = key, true
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, err := dial(ctx, cfg)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	if device, err = c.Onboard(ctx, secret); err != nil {
		return "", "", fmt.Errorf("onboard: %w", err)
	}
	return device, path, nil
}

// keyFilePath returns the device key file: --key-file, or
// $HOME/.tally-agent/HOSTID.key. explicit says --key-file named it.
func keyFilePath(o options, hello deviceproto.Hello) (path string, explicit bool, err error) {
	if o.keyFile != "" {
		return o.keyFile, true, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", false, fmt.Errorf("no --key-file given and no home directory: %w", err)
	}
	return filepath.Join(home, ".tally-agent", keyFileName(hello.HostIDs[0].Value)+".key"), false, nil
}

// keyFileName keeps letters, digits, '.', '_' and '-' of a hostid; a MAC's
// colons become '-'.
func keyFileName(hostid string) string {
	b := []byte(hostid)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte("device"), b...)
	}
	return string(b)
}

// existingDeviceKey returns the device key for commands other than
// onboard: none when the default key file does not exist (the device is
// not onboarded), an error when --key-file names a missing file.
func existingDeviceKey(o options, hello deviceproto.Hello) (crypto.Signer, error) {
	path, explicit, err := keyFilePath(o, hello)
	if err != nil {
		if explicit {
			return nil, err
		}
		return nil, nil
	}
	key, err := readDeviceKey(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	return key, err
}

func readDeviceKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the device key: %w", err)
	}
	key, err := deviceproto.ParseDeviceKey(data)
	if err != nil {
		return nil, fmt.Errorf("device key %s: %w", path, err)
	}
	return key, nil
}

// createDeviceKey makes a device key and writes it to path, mode 0600, in
// a directory of mode 0700 when it has to make one.
func createDeviceKey(path string) (crypto.Signer, error) {
	key, err := deviceproto.GenerateDeviceKey()
	if err != nil {
		return nil, err
	}
	data, err := deviceproto.MarshalDeviceKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("save the device key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("save the device key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("save the device key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("save the device key: %w", err)
	}
	return key, nil
}

// explainAuth adds what to do to an auth_required refusal.
func explainAuth(err error) error {
	var pe *deviceproto.Error
	if errors.As(err, &pe) && pe.Code == deviceproto.CodeAuthRequired {
		return fmt.Errorf("%w (no key file for this device; give --key-file)", err)
	}
	return err
}

// deviceURL accepts wss://HOST:PORT, https://HOST:PORT or a full URL and
// returns the device endpoint.
func deviceURL(server string) (string, error) {
	if !strings.Contains(server, "://") {
		server = "wss://" + server
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", usagef("--server %q is not a URL such as wss://HOST:8443", server)
	}
	switch u.Scheme {
	case "wss", "ws":
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	default:
		return "", usagef("--server %q: scheme must be wss or https", server)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = deviceproto.Path
	}
	return u.String(), nil
}

// clientConfig builds the TLS settings and the hello from the flags.
func clientConfig(o options) (deviceproto.ClientConfig, error) {
	var cfg deviceproto.ClientConfig
	set := 0
	for _, on := range []bool{o.ca != "", o.fingerprint != "", o.insecure} {
		if on {
			set++
		}
	}
	if set > 1 {
		return cfg, usagef("use only one of --ca, --fingerprint and --insecure")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.ca != "":
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return cfg, fmt.Errorf("read --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("--ca %s holds no PEM certificate", o.ca)
		}
		tc.RootCAs = pool
	case o.fingerprint != "":
		want := deviceproto.NormalizeFingerprint(o.fingerprint)
		tc.InsecureSkipVerify = true // replaced by the pin below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			if got := deviceproto.Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("server certificate fingerprint %s is not the pinned %s", got, want)
			}
			return nil
		}
	case o.insecure:
		tc.InsecureSkipVerify = true
	}
	cfg.TLS = tc
	cfg.VerifyFingerprint = o.identity
	value := o.hostid
	if value == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return cfg, fmt.Errorf("no --hostid given and the host name is unknown")
		}
		value = h
	}
	cfg.Hello = deviceproto.Hello{
		Protocol:   deviceproto.Protocol,
		HostIDs:    []deviceproto.HostID{{Value: value, Type: strings.ToUpper(o.hostidType)}},
		Alias:      o.alias,
		DeviceType: strings.ToUpper(o.deviceType),
	}
	if h, err := os.Hostname(); err == nil {
		cfg.Hello.Hostname = h
	}
	return cfg, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printWelcome(w io.Writer, wel deviceproto.Welcome, asJSON bool) error {
	if asJSON {
		return writeJSON(w, wel)
	}
	fmt.Fprintf(w, "node:         %s\n", wel.Node)
	fmt.Fprintf(w, "device:       %s\n", wel.Device)
	fmt.Fprintf(w, "fingerprint:  %s\n", wel.Fingerprint)
	fmt.Fprintf(w, "onboarded:    %t\n", wel.Onboarded)
	fmt.Fprintf(w, "borrow:       %s, renew at %d%%\n", time.Duration(wel.RenewHint.BorrowSeconds)*time.Second, wel.RenewHint.RenewPercent)
	fmt.Fprintf(w, "server time:  %s\n", wel.ServerTime.Format(time.RFC3339))
	return nil
}

func printStatus(w io.Writer, st *deviceproto.Status, asJSON bool) error {
	if asJSON {
		return writeJSON(w, st)
	}
	if len(st.Leases) == 0 {
		fmt.Fprintf(w, "%s holds no leases\n", st.Device)
		return nil
	}
	fmt.Fprintf(w, "%-20s %-10s %8s %9s  %s\n", "FEATURE", "VERSION", "COUNT", "OVERDRAFT", "EXPIRY")
	for _, l := range st.Leases {
		fmt.Fprintf(w, "%-20s %-10s %8d %9d  %s\n", l.Feature, l.Version, l.Count, l.Overdraft, l.Expiry.Format(time.RFC3339))
	}
	return nil
}

// printResponse prints a verified response; a denial is an error.
func printResponse(w io.Writer, res *deviceproto.CapabilityResponse, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, res.Payload); err != nil {
			return err
		}
	} else {
		for _, g := range res.Grants {
			if g.Count == 0 {
				fmt.Fprintf(w, "%s %s: none held\n", g.Feature, g.Version)
				continue
			}
			od := ""
			if g.Overdraft > 0 {
				od = fmt.Sprintf(" (%d overdraft)", g.Overdraft)
			}
			fmt.Fprintf(w, "%s %s: %d held%s until %s, renew at %s\n", g.Feature, g.Version, g.Count, od,
				g.Expiry.Format(time.RFC3339), g.RenewAt.Format(time.RFC3339))
		}
	}
	if len(res.Denials) > 0 {
		d := res.Denials[0]
		return fmt.Errorf("%s %s count %d denied: %s (holding %d)", d.Feature, d.Version, d.Count, d.Reason, d.Held)
	}
	return nil
}

func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
