package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/hw"
	"github.com/tallyhq/tally/transport/deviceproto"
	"github.com/tallyhq/tally/transport/discovery"
)

// runListen is `tally-agent listen`: it answers SCAN with PRESENT and PING
// with PONG on UDP --port until ctx ends or SIGINT or SIGTERM arrives.
func runListen(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Uint("port", discovery.DefaultPort, "UDP port to answer on (0 picks one)")
	bind := fs.String("bind", "0.0.0.0", "IPv4 address to listen on")
	noHW := fs.Bool("no-hw", false, "do not add the machine's hardware hostids")
	identity := fs.String("identity", "", "accept invitations only from this licensing ID fingerprint")
	acceptFirst := fs.Bool("accept-first-invite", false, "with no pinned licensing ID, accept an invitation from any and pin it")
	if err := fs.Parse(args); err != nil {
		return usagef("listen: %s", err)
	}
	if fs.NArg() > 0 {
		return usagef("listen takes flags only, not %q", fs.Arg(0))
	}
	if *port > 65535 {
		return usagef("listen --port %d: give a port from 0 to 65535", *port)
	}
	if ip := net.ParseIP(*bind); ip == nil || ip.To4() == nil {
		return usagef("listen --bind %q is not an IPv4 address", *bind)
	}
	first, err := deviceHostID(o)
	if err != nil {
		return err
	}
	hostids := []discovery.HostID{first}
	if !*noHW {
		m, err := hw.Detect(hw.Config{})
		if err != nil {
			fmt.Fprintf(stderr, "tally-agent: hardware hostids unavailable (%s); answering with %s only\n", oneLine(err.Error()), first.Value)
		}
		for _, h := range m.HostIDs {
			d := discovery.HostID{Type: discovery.HostIDType(h.Type), Value: h.Value}
			if d != first && len(hostids) < discovery.MaxHostIDs {
				hostids = append(hostids, d)
			}
		}
	}
	alias := o.alias
	if len(alias) > discovery.MaxTextLen {
		alias = alias[:discovery.MaxTextLen]
	}
	keyPath, _, keyErr := keyFilePath(o, deviceproto.Hello{HostIDs: []deviceproto.HostID{{Value: first.Value}}})
	trustPath, trustErr := trustFilePath()
	present := func() discovery.PresentInfo {
		info := discovery.PresentInfo{HostIDs: hostids, Alias: alias}
		if keyErr == nil {
			if _, err := os.Stat(keyPath); err == nil {
				info.Onboarded = true
				if trustErr == nil {
					if fp, err := readTrustFile(trustPath); err == nil {
						info.OnboardedWith = fp
					}
				}
			}
		}
		return info
	}

	trust, err := newInviteTrust(*identity, *acceptFirst, trustPath, trustErr)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(*bind, strconv.FormatUint(uint64(*port), 10))
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	inv := &inviteHandler{ctx: ctx, o: o, trust: trust, stdout: stdout, stderr: stderr}
	a, err := discovery.NewAnswerer(discovery.AnswererConfig{Conn: conn, Present: present, Trust: trust.accepts, Invite: inv.handle})
	if err != nil {
		return err
	}
	if o.json {
		ids := make([]map[string]string, len(hostids))
		for i, h := range hostids {
			ids[i] = map[string]string{"type": hostid.Type(h.Type).String(), "value": h.Value}
		}
		if err := writeJSON(stdout, map[string]any{"listening": conn.LocalAddr().String(), "hostids": ids}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "listening on udp %s as %s (%d hostids)\n", conn.LocalAddr(), first.Value, len(hostids))
	}
	err = a.Serve(ctx)
	inv.wait()
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}
