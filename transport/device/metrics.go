package device

import (
	"fmt"
	"io"
	"sort"
	"sync/atomic"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// errorCodes are the codes the handler sends; each has a counter.
var errorCodes = []string{
	deviceproto.CodeMalformed, deviceproto.CodeUnknownType, deviceproto.CodeHelloRequired,
	deviceproto.CodeUnsupportedProtocol, deviceproto.CodeDeviceMismatch, deviceproto.CodeRateLimited,
	deviceproto.CodeInvalidRequest, deviceproto.CodeInvalidDevice, deviceproto.CodeInvalidFeature,
	deviceproto.CodeInvalidVersion, deviceproto.CodeInvalidCount, deviceproto.CodeUnknownDevice,
	deviceproto.CodeNotApplied, deviceproto.CodeShuttingDown, deviceproto.CodeInternal,
	deviceproto.CodeUnknownKey, deviceproto.CodeKeyInactive, deviceproto.CodeKeyUsed, deviceproto.CodeInvalidKey,
	deviceproto.CodeAuthFailed, deviceproto.CodeAuthRequired, deviceproto.CodeAlreadyOnboarded,
}

var denialReasons = []string{
	deviceproto.DenyNoSuchFeature, deviceproto.DenyNoSuchVersion, deviceproto.DenyNotActive,
	deviceproto.DenyInsufficient, deviceproto.DenyModel, deviceproto.DenyNotOnboarded, deviceproto.DenyOther,
}

// metrics are the handler's counters. The maps are filled at construction
// and only read afterwards.
type metrics struct {
	connections atomic.Int64 // open WebSocket connections
	accepted    atomic.Uint64
	rejected    atomic.Uint64 // refused with 503 at the limit
	received    atomic.Uint64
	sent        atomic.Uint64
	pushes      atomic.Uint64
	overflows   atomic.Uint64 // connections closed for a full send queue
	oversized   atomic.Uint64 // connections closed for a too large message
	checkouts   atomic.Uint64 // features granted with a count above zero
	returns     atomic.Uint64 // features returned (count zero)
	onboarded   atomic.Uint64 // devices onboarded
	authed      atomic.Uint64 // connections authenticated
	badProofs   atomic.Uint64 // onboard or authenticate signatures that did not verify
	authClosed  atomic.Uint64 // connections closed after too many failed attempts
	errors      map[string]*atomic.Uint64
	denials     map[string]*atomic.Uint64
}

func newMetrics() *metrics {
	m := &metrics{errors: map[string]*atomic.Uint64{}, denials: map[string]*atomic.Uint64{}}
	for _, c := range errorCodes {
		m.errors[c] = new(atomic.Uint64)
	}
	for _, r := range denialReasons {
		m.denials[r] = new(atomic.Uint64)
	}
	return m
}

func (m *metrics) countError(code string) {
	if c := m.errors[code]; c != nil {
		c.Add(1)
	}
}

func (m *metrics) countDenial(reason string) {
	if c := m.denials[reason]; c != nil {
		c.Add(1)
	}
}

// WriteMetrics writes the handler's metrics in the Prometheus text format.
func (h *Handler) WriteMetrics(w io.Writer) {
	m := h.metrics
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	labelled := func(name, help, label string, vals map[string]*atomic.Uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, vals[k].Load())
		}
	}
	gauge("tally_device_connections", "Open device WebSocket connections.", m.connections.Load())
	counter("tally_device_connections_accepted_total", "Device connections accepted.", m.accepted.Load())
	counter("tally_device_connections_rejected_total", "Device connections refused at the connection limit.", m.rejected.Load())
	counter("tally_device_messages_received_total", "Messages received from devices.", m.received.Load())
	counter("tally_device_messages_sent_total", "Messages written to devices.", m.sent.Load())
	counter("tally_device_pushes_total", "leaseChanged pushes queued to devices.", m.pushes.Load())
	counter("tally_device_send_overflows_total", "Connections closed because their send queue overflowed.", m.overflows.Load())
	counter("tally_device_oversized_total", "Connections closed for a message over the size limit.", m.oversized.Load())
	counter("tally_device_checkouts_total", "Features granted to devices with a count above zero.", m.checkouts.Load())
	counter("tally_device_returns_total", "Features returned by devices.", m.returns.Load())
	counter("tally_device_onboardings_total", "Devices onboarded with a first-authentication key.", m.onboarded.Load())
	counter("tally_device_authentications_total", "Connections authenticated by a device key.", m.authed.Load())
	counter("tally_device_auth_failures_total", "Onboard and authenticate signatures that did not verify.", m.badProofs.Load())
	counter("tally_device_auth_closed_total", "Connections closed after too many failed onboard or authenticate attempts.", m.authClosed.Load())
	counter("tally_device_signatures_total", "ECDSA signatures made.", h.signer.signatures.Load())
	counter("tally_device_signed_payloads_total", "Payloads covered by those signatures.", h.signer.payloads.Load())
	labelled("tally_device_errors_total", "Error messages sent to devices, by code.", "code", m.errors)
	labelled("tally_device_denials_total", "Features denied to devices, by reason.", "reason", m.denials)
}
