package discovery

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
)

// dropReason is why a received packet got no further.
type dropReason int

const (
	dropVersion       dropReason = iota // a Tally packet of another version
	dropMalformed                       // not a valid packet, oversized or truncated
	dropRateLimited                     // the source or the total is over its rate
	dropAmplification                   // the reply would be too large, or go to a privileged port
	dropUnexpected                      // a type this side does not take, an answer nobody waits for, or an INVITE for another device
	dropOverflow                        // an answer arrived faster than its scan or ping could take it
	dropUntrusted                       // an INVITE that does not verify, or from a licensing ID the device does not trust
	dropStale                           // an INVITE whose timestamp is beyond InviteMaxSkew
	dropReplay                          // an INVITE whose nonce was taken before
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"version", "malformed", "rate_limited", "amplification", "unexpected", "overflow",
	"untrusted", "stale", "replay"}

// counters are the packet counters of a Responder or an Answerer.
type counters struct {
	received   [maxType + 1]atomic.Uint64
	sent       [maxType + 1]atomic.Uint64
	dropped    [numDropReasons]atomic.Uint64
	sendErrors atomic.Uint64
}

func (c *counters) drop(r dropReason) { c.dropped[r].Add(1) }

// write writes the counters in the Prometheus text format, with role
// ("server" or "agent") as a label.
func (c *counters) write(w io.Writer, role string) error {
	var b strings.Builder
	b.WriteString("# HELP tally_discovery_received_total Discovery packets received and decoded, by type.\n")
	b.WriteString("# TYPE tally_discovery_received_total counter\n")
	for t := TypeDiscover; t <= maxType; t++ {
		fmt.Fprintf(&b, "tally_discovery_received_total{role=%q,type=%q} %d\n", role, t, c.received[t].Load())
	}
	b.WriteString("# HELP tally_discovery_dropped_total Discovery packets dropped, by reason.\n")
	b.WriteString("# TYPE tally_discovery_dropped_total counter\n")
	for r, name := range dropReasonNames {
		fmt.Fprintf(&b, "tally_discovery_dropped_total{role=%q,reason=%q} %d\n", role, name, c.dropped[r].Load())
	}
	b.WriteString("# HELP tally_discovery_sent_total Discovery packets sent, by type.\n")
	b.WriteString("# TYPE tally_discovery_sent_total counter\n")
	for t := TypeDiscover; t <= maxType; t++ {
		fmt.Fprintf(&b, "tally_discovery_sent_total{role=%q,type=%q} %d\n", role, t, c.sent[t].Load())
	}
	b.WriteString("# HELP tally_discovery_send_errors_total Discovery packets the socket refused to send.\n")
	b.WriteString("# TYPE tally_discovery_send_errors_total counter\n")
	fmt.Fprintf(&b, "tally_discovery_send_errors_total{role=%q} %d\n", role, c.sendErrors.Load())
	_, err := io.WriteString(w, b.String())
	return err
}
