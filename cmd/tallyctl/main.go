// Command tallyctl is the administrator's command line for Tally and the
// software producer's kit for signed rights files.
//
// Against a server it speaks the REST API of tallyd (package transport):
// it logs in once per invocation with the user and password it is given,
// sends the Bearer token with every request (the token simply expires; an
// invocation does not log out, which would end the user's other sessions), prints tables for people or the
// server's JSON with --json, and turns an API error into one line on stderr
// and a non-zero exit. The producer commands (producer keygen, producer
// issue) work offline with package rights and need no server.
//
// The server's certificate is checked against the system roots, or against
// the CA given with --ca (for a node's self-signed certificate, the
// certificate itself); --insecure skips the check and is meant for a --dev
// node on loopback.
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

const defaultServer = "https://127.0.0.1:8443"

const usage = `usage: tallyctl [--server https://HOST:8443] [--ca FILE | --insecure]
                [--user U] [--password-file F] [--json] COMMAND [ARGS]

Server commands:
  health                                  the server's status (no login)
  features [--name N] [--page P] [--page-size S]
                                          features and versions with their counts
  features show NAME VERSION              a feature's lines and served devices
  devices [--page P] [--page-size S]      known devices
  devices show TYPE VALUE                 a device's hostids, attributes and leases
  devices drop TYPE VALUE                 forget a device and free its counts
  reservations list [--page P] [--page-size S]
  reservations import FILE                add reservation groups (JSON), replacing same-named ones
  reservations export [FILE]              write all groups as JSON (to stdout without FILE)
  reservations delete GROUP...            delete reservation groups
  model get                               print the license model text
  model upload FILE                       install a license model
  model delete                            remove the license model
  pools                                   the named license pools and their use
  properties get [NAME]                   all properties, or one in detail
  properties set NAME VALUE               change a property
  rights load FILE                        load a signed rights file
  users list                              the users and their roles
  users create NAME --role R [--role R]... --password-file F
                                          add a user (roles ADMIN, READ, RESERVATIONS,
                                          OFFLINE, DROPDEVICE, KEYS)
  users set-roles NAME --role R [--role R]...
                                          replace a user's roles
  users set-password NAME --password-file F
                                          set a user's password (ends its logins)
  users delete NAME                       remove a user
  passwd --password-file NEW              change your own password (the current one
                                          comes from --password-file or TALLY_PASSWORD)
  audit [--after SEQ] [--limit N]         the audit log; fails if its hash chain is broken
  licensing-id show                       the main licensing ID and each server's status
  licensing-id export --out FILE          write the licensing ID certificate (PEM)
  licensing-id backup --out FILE --backup-password-file F
                                          write the licensing ID encrypted under the
                                          password in F (ADMIN)
  licensing-id restore FILE --backup-password-file F
                                          restore a licensing ID backup; the server uses
                                          it after a restart of tallyd (ADMIN)
  backup create --out FILE [--backup-password-file F]
                                          write a database backup: the whole state,
                                          secrets included; sealed under the password
                                          in F when given (ADMIN)
  backup restore FILE [--backup-password-file F]
                                          put a database backup back, opening a sealed
                                          one with the password in F; the licensing
                                          ID stays as it is (ADMIN)
  keys list [--type one-time|mass] [--state active|inactive|used] [--show]
            [--page P] [--page-size S]    first-authentication keys, secrets masked
                                          unless --show (KEYS)
  keys create --type one-time --count N [--description D]
  keys create --type mass [--password-file F] [--description D]
                                          make keys; a mass key's password is read from
                                          F, or random without it (KEYS)
  keys activate ID | keys deactivate ID   let a key onboard devices, or stop it (KEYS)
  keys describe ID TEXT                   change a key's description (KEYS)
  keys delete ID                          remove a key (KEYS)
  client-key upload FILE                  install the client key: a 2048-bit RSA public
                                          key, DER or PEM (ADMIN)
  client-key show                         whether a client key is installed, and its
                                          fingerprint (ADMIN)
  scan [--target CIDR|IP[:PORT]]... [--timeout D]
                                          find devices on the LAN (UDP 30005): scan the
                                          broadcast addresses or the targets (a CIDR at
                                          most 4096 addresses; :PORT for tests), show the
                                          progress on stderr, then the devices (ADMIN)
  discovered [--page P] [--page-size S]   the devices scans found, kept in memory on
                                          the node that scanned
  ping                                    check which discovered devices are online (ADMIN)
  wake MAC | wake TYPE VALUE              send a Wake-on-LAN magic packet to UDP port 9
                                          on the broadcast addresses; ETHERNET only (ADMIN)
  offline request --out FILE              the capability request to carry to the back office (OFFLINE)
  offline activate --id ACT --count N --out FILE
                                          a capability request asking for an activation
                                          (count 0 gives it back) (OFFLINE)
  offline upload FILE                     install the back office's response (OFFLINE)
  cluster status                          members, roles, leader, applied index, health
  cluster token [--description D] [--ttl 1h]
                                          make a join token for one new node (ADMIN)
  cluster tokens | cluster delete-token ID
                                          list or delete join tokens (ADMIN)
  cluster remove NODE                     remove a member from the cluster (ADMIN)
  onboard MAC | onboard TYPE VALUE        invite a discovered device to onboard: a one-time
                                          key bound to it, sent signed to tally-agent
                                          listen (ADMIN)

Producer commands (no server):
  producer keygen --out PREFIX            write PREFIX.key (0600) and PREFIX.pub
  producer issue --key FILE --server FINGERPRINT --source NAME --sequence N
                 --lines FILE [--lock NAME=VALUE]... [--out FILE]
                                          sign feature lines for one server

Options:
  --server URL         server address (default $TALLY_SERVER or ` + defaultServer + `)
  --ca FILE            PEM certificate(s) to trust for the server (default $TALLY_CA)
  --insecure           do not check the server's certificate
  --user U             administrator to log in as (default admin)
  --password-file F    file holding the password (default $TALLY_PASSWORD)
  --json               print JSON instead of tables
`

// usageErr is a mistake in the command line; it exits with exitUsage.
type usageErr string

func (e usageErr) Error() string { return string(e) }

// usageError reports a wrong command line.
func usageError(format string, args ...any) error {
	return usageErr(fmt.Sprintf(format, args...))
}

// cli is one invocation: its options, its outputs and its sources of time
// and randomness.
type cli struct {
	opts   options
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	random io.Reader
	api    *client // made on first use
}

// options are the global flags.
type options struct {
	server       string
	ca           string
	insecure     bool
	user         string
	passwordFile string
	json         bool
}

// run executes one command line and returns the exit code. Failures are
// written to stderr as one line, "tallyctl: reason".
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now, random: rand.Reader}
	err := c.run(args)
	var ue usageErr
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tallyctl: %s (see tallyctl --help)\n", oneLine(ue.Error()))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "tallyctl: %s\n", oneLine(err.Error()))
		return exitError
	}
}

func (c *cli) run(args []string) error {
	server := c.getenv("TALLY_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs := newFlagSet("tallyctl")
	fs.StringVar(&c.opts.server, "server", server, "")
	fs.StringVar(&c.opts.ca, "ca", c.getenv("TALLY_CA"), "")
	fs.BoolVar(&c.opts.insecure, "insecure", false, "")
	fs.StringVar(&c.opts.user, "user", "admin", "")
	fs.StringVar(&c.opts.passwordFile, "password-file", "", "")
	fs.BoolVar(&c.opts.json, "json", false, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	caGiven := false
	fs.Visit(func(f *flag.Flag) { caGiven = caGiven || f.Name == "ca" })
	if c.opts.insecure {
		if caGiven {
			return usageError("--ca and --insecure exclude each other")
		}
		c.opts.ca = ""
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageError("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help":
		return flag.ErrHelp
	case "health":
		return c.health(rest)
	case "features":
		return c.features(rest)
	case "devices":
		return c.devices(rest)
	case "reservations":
		return c.reservations(rest)
	case "model":
		return c.model(rest)
	case "pools":
		return c.pools(rest)
	case "properties":
		return c.properties(rest)
	case "rights":
		return c.rights(rest)
	case "users":
		return c.users(rest)
	case "passwd":
		return c.passwd(rest)
	case "audit":
		return c.audit(rest)
	case "licensing-id":
		return c.licensingID(rest)
	case "backup":
		return c.backup(rest)
	case "keys":
		return c.keys(rest)
	case "client-key":
		return c.clientKey(rest)
	case "scan":
		return c.scan(rest)
	case "discovered":
		return c.discovered(rest)
	case "ping":
		return c.ping(rest)
	case "wake":
		return c.wake(rest)
	case "onboard":
		return c.onboard(rest)
	case "cluster":
		return c.cluster(rest)
	case "offline":
		return c.offline(rest)
	case "producer":
		return c.producer(rest)
	}
	return usageError("unknown command %q", cmd)
}

// newFlagSet returns a flag set that reports errors instead of printing
// them, so that run prints one line.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, marking errors as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if fs.Name() == "tallyctl" {
			return usageError("%v", err)
		}
		return usageError("%s: %v", fs.Name(), err)
	}
	return nil
}

// commandFlags returns the flag set of a command; every command also takes
// --json after its name.
func (c *cli) commandFlags(name string) *flag.FlagSet {
	fs := newFlagSet(name)
	fs.BoolVar(&c.opts.json, "json", c.opts.json, "")
	return fs
}

// parseArgs parses a command's flags and checks that it got between min and
// max positional arguments (max < 0: any number).
func parseArgs(fs *flag.FlagSet, args []string, min, max int, shape string) ([]string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if len(rest) < min || (max >= 0 && len(rest) > max) {
		return nil, usageError("usage: tallyctl %s", shape)
	}
	return rest, nil
}

// subcommand splits "NAME SUB ARGS..." into SUB and its arguments.
func subcommand(group string, args []string, subs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usageError("%s needs a subcommand: %s", group, strings.Join(subs, ", "))
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, usageError("unknown %s subcommand %q (want %s)", group, args[0], strings.Join(subs, ", "))
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
