package mdns

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s is not installed (Debian package %s)", name, map[string]string{
			"dig": "dnsutils", "avahi-browse": "avahi-utils", "avahi-daemon": "avahi-daemon", "dbus-daemon": "dbus",
		}[name])
	}
	return p
}

// TestDig checks the legacy unicast answer a standard client gets: dig
// sends from a random port, so it must get a unicast reply with its ID,
// its question, and the SRV target and port in the additional records.
func TestDig(t *testing.T) {
	dig := needTool(t, "dig")
	ifi := multicastInterface(t)
	instance, host := uniqueNames()
	startResponder(t, ifi, Config{Instance: instance, Host: host})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dig, "@224.0.0.251", "-p", "5353", "_tally._tcp.local", "PTR", "+time=3", "+tries=2").CombinedOutput()
	text := string(out)
	if err != nil {
		if strings.Contains(text, "timed out") && digConnectsUDP(dig) {
			t.Skipf("skipping: this dig (BIND 9.18 or later) connect()s its UDP socket to 224.0.0.251:5353, "+
				"so the kernel drops every reply, which must come from a unicast address (avahi-daemon's replies "+
				"are dropped the same way); TestLegacyUnicast checks the same exchange from an ephemeral port\n%s", text)
		}
		t.Fatalf("dig: %v\n%s", err, text)
	}
	escaped := strings.ReplaceAll(instance, " ", `\ `)
	for _, want := range []string{
		"status: NOERROR",
		"QUESTION SECTION:\n;_tally._tcp.local.\t\tIN\tPTR",
		"_tally._tcp.local.\t10\tIN\tPTR\t" + escaped + "._tally._tcp.local.",
		escaped + "._tally._tcp.local. 10 IN\tSRV\t0 0 8443 " + host,
		escaped + "._tally._tcp.local. 10 IN\tTXT\t",
		host + "\t\t10\tIN\tA\t",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dig output lacks %q:\n%s", want, text)
		}
	}
}

// digConnectsUDP reports whether dig is BIND 9.18 or later, whose
// network manager connects UDP sockets to the server address.
func digConnectsUDP(dig string) bool {
	out, _ := exec.Command(dig, "-v").CombinedOutput()
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "DiG" {
		return false
	}
	v := strings.SplitN(f[1], ".", 3)
	if len(v) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(v[0])
	minor, err2 := strconv.Atoi(v[1])
	return err1 == nil && err2 == nil && (major > 9 || major == 9 && minor >= 18)
}

// TestAvahiBrowse checks that avahi-browse finds and resolves the
// instance. It needs avahi-daemon on a D-Bus system bus; when none runs
// and the test runs as root, it starts both and stops them afterwards.
func TestAvahiBrowse(t *testing.T) {
	browse := needTool(t, "avahi-browse")
	ifi := multicastInterface(t)
	startAvahi(t)
	instance, host := uniqueNames()
	startResponder(t, ifi, Config{Instance: instance, Host: host})

	var text string
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, browse, "-rpt", "_tally._tcp").CombinedOutput()
		cancel()
		text = string(out)
		if err != nil {
			t.Fatalf("avahi-browse: %v\n%s", err, text)
		}
		for _, line := range strings.Split(text, "\n") {
			// =;eth0;IPv4;Tally\032test\032…;_tally._tcp;local;host;address;port;"txt"…
			f := strings.Split(line, ";")
			if len(f) < 10 || f[0] != "=" || unescapeAvahi(f[3]) != instance {
				continue
			}
			if f[6] != strings.TrimSuffix(host, ".") || f[8] != "8443" ||
				!strings.Contains(f[9], `"fp=ab12"`) || !strings.Contains(f[9], `"api=/api/v1"`) {
				t.Fatalf("avahi resolved %q, want %s port 8443 with the TXT pairs", line, host)
			}
			return
		}
	}
	t.Fatalf("avahi-browse did not resolve %q:\n%s", instance, text)
}

// unescapeAvahi undoes avahi-browse's \DDD escapes.
func unescapeAvahi(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// startAvahi makes sure avahi-daemon runs, starting it (and the D-Bus
// system bus) when it does not and this is root, or skips the test.
func startAvahi(t *testing.T) {
	t.Helper()
	if exec.Command("avahi-daemon", "--check").Run() == nil {
		return
	}
	daemon := needTool(t, "avahi-daemon")
	dbus := needTool(t, "dbus-daemon")
	if os.Geteuid() != 0 {
		t.Skip("skipping: avahi-daemon is not running and starting it needs root")
	}
	const busSocket = "/run/dbus/system_bus_socket"
	if c, err := net.Dial("unix", busSocket); err == nil {
		c.Close()
	} else {
		if err := os.MkdirAll("/run/dbus", 0o755); err != nil {
			t.Skipf("skipping: cannot create /run/dbus: %v", err)
		}
		// Left by a bus that is no longer running.
		os.Remove("/run/dbus/pid")
		os.Remove(busSocket)
		if out, err := exec.Command(dbus, "--system", "--fork").CombinedOutput(); err != nil {
			t.Skipf("skipping: cannot start the D-Bus system bus: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			if b, err := os.ReadFile("/run/dbus/pid"); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					if p, err := os.FindProcess(pid); err == nil {
						p.Kill()
					}
				}
			}
			os.Remove(filepath.Join("/run/dbus", "pid"))
			os.Remove(busSocket)
		})
	}
	if out, err := exec.Command(daemon, "--no-drop-root", "--no-chroot", "--no-rlimits", "-D").CombinedOutput(); err != nil {
		t.Skipf("skipping: avahi-daemon cannot run here: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(daemon, "-k").Run() })
	for i := 0; i < 50; i++ {
		if exec.Command(daemon, "--check").Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Skip("skipping: avahi-daemon started but does not report running")
}
