package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// maxDevices bounds the fleet: the model's state is an array so that
// porcupine can compare states with ==.
const maxDevices = 16

// Kinds of operation.
const (
	opCheckout = "checkout"
	opRenew    = "renew"
	opReturn   = "return"
)

// opInput is a request that sets what device holds of the feature: a
// checkout or renew of count, or a return (count 0).
type opInput struct {
	Device int    `json:"device"`
	Kind   string `json:"kind"`
	Count  int64  `json:"count"`
}

// opOutput is its outcome. Unknown: the call failed (timeout, connection
// lost, an error) and may or may not have taken effect, now or later.
type opOutput struct {
	Unknown bool   `json:"unknown,omitempty"`
	Granted bool   `json:"granted"`
	Held    int64  `json:"held"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
}

type leaseState [maxDevices]int64

// leaseModel is a counted feature of capacity (total plus overdraft): a
// request granted sets the device's count, which needs the sum to stay
// within capacity; a denial leaves every count as it was.
func leaseModel(capacity int64) porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init: func() []any { return []any{leaseState{}} },
		Step: func(state, input, output any) []any {
			s, in, out := state.(leaseState), input.(opInput), output.(opOutput)
			total := int64(0)
			for _, h := range s {
				total += h
			}
			fits := total-s[in.Device]+in.Count <= capacity
			next := s
			next[in.Device] = in.Count
			switch {
			case out.Unknown:
				if fits {
					return []any{next, s}
				}
				return []any{s}
			case out.Granted:
				if fits && out.Held == in.Count {
					return []any{next}
				}
			default:
				if !fits && out.Held == s[in.Device] {
					return []any{s}
				}
			}
			return nil
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(opInput), output.(opOutput)
			switch {
			case out.Unknown:
				return fmt.Sprintf("dev%d %s %d -> ? (%s)", in.Device, in.Kind, in.Count, out.Error)
			case out.Granted:
				return fmt.Sprintf("dev%d %s %d -> granted", in.Device, in.Kind, in.Count)
			}
			return fmt.Sprintf("dev%d %s %d -> denied (%s), holds %d", in.Device, in.Kind, in.Count, out.Reason, out.Held)
		},
		DescribeState: func(state any) string { return fmt.Sprint(state.(leaseState)) },
	}).ToModel()
}

// record is one operation of the history.
type record struct {
	Client int      `json:"client"`
	Node   string   `json:"node"`
	Input  opInput  `json:"input"`
	Output opOutput `json:"output"`
	Call   int64    `json:"callNs"`
	Return int64    `json:"returnNs"` // 0 when unknown
}

// fleet is the simulated devices.
type fleet struct {
	run       string
	feature   string
	version   string
	devices   int
	nodes     func() []*node // the nodes devices may connect to
	start     time.Time
	opTimeout time.Duration

	mu      sync.Mutex
	history []record

	completed atomic.Int64
	unknown   atomic.Int64
}

func (f *fleet) clock() int64 { return int64(time.Since(f.start)) }

func (f *fleet) deviceID(d int) string { return fmt.Sprintf("%s-dev%d", f.run, d) }

func dialConfig(hostid string) deviceproto.ClientConfig {
	return deviceproto.ClientConfig{
		TLS:              &tls.Config{InsecureSkipVerify: true},
		Hello:            deviceproto.Hello{HostIDs: []deviceproto.HostID{{Value: hostid, Type: "STRING"}}, DeviceType: deviceproto.DeviceVirtual, Alias: "chaos"},
		HandshakeTimeout: 5 * time.Second,
		WriteTimeout:     5 * time.Second,
	}
}

// runDevice is device d's loop until ctx ends.
func (f *fleet) runDevice(ctx context.Context, d int) {
	r := rand.New(rand.NewPCG(uint64(d), uint64(time.Now().UnixNano())))
	client := d
	var c *deviceproto.Client
	var at *node
	held := int64(0) // what the device knows it holds; -1 unknown
	attempt := d
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		if c == nil {
			nodes := f.nodes()
			at = nodes[attempt%len(nodes)]
			attempt++
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			c, err = deviceproto.Dial(dctx, "wss://"+at.ip+":8443/ws/device", dialConfig(f.deviceID(d)))
			cancel()
			if err != nil {
				c = nil
				sleep(ctx, 300*time.Millisecond)
				continue
			}
		}
		in := opInput{Device: d}
		switch {
		case held > 0 && r.IntN(3) == 0:
			in.Kind = opRenew
			in.Count = held
		case held != 0 && r.IntN(2) == 0:
			in.Kind = opReturn
		default:
			in.Kind = opCheckout
			in.Count = 1 + r.Int64N(2)
		}
		call := f.clock()
		octx, cancel := context.WithTimeout(ctx, f.opTimeout)
		var res *deviceproto.CapabilityResponse
		var err error
		feat := deviceproto.FeatureRequest{Name: f.feature, Version: f.version, Count: in.Count}
		switch in.Kind {
		case opCheckout:
			res, err = c.Checkout(octx, feat)
		case opRenew:
			res, err = c.Renew(octx, feat)
		case opReturn:
			res, err = c.Return(octx, deviceproto.FeatureRef{Name: f.feature, Version: f.version})
		}
		cancel()
		ret := f.clock()
		var out opOutput
		if err == nil {
			out, err = f.outcome(res)
		}
		if err != nil {
			// A call cut short by the end of the run is unknown too.
			out = opOutput{Unknown: true, Error: shortError(err)}
			ret = 0
		}
		f.mu.Lock()
		f.history = append(f.history, record{Client: client, Node: at.id, Input: in, Output: out, Call: call, Return: ret})
		f.mu.Unlock()
		if out.Unknown {
			f.unknown.Add(1)
			// The call may still take effect at any time: the device
			// goes on as another client of the history, on a new
			// connection, perhaps to another node.
			client += maxDevices
			held = -1
			c.Close()
			c = nil
			continue
		}
		f.completed.Add(1)
		held = out.Held
		sleep(ctx, time.Duration(20+r.IntN(60))*time.Millisecond)
	}
}

// outcome reads the feature's grant or denial from a response.
func (f *fleet) outcome(res *deviceproto.CapabilityResponse) (opOutput, error) {
	for _, dn := range res.Denials {
		if dn.Feature == f.feature {
			return opOutput{Held: dn.Held, Reason: dn.Reason}, nil
		}
	}
	for _, g := range res.Grants {
		if g.Feature == f.feature {
			return opOutput{Granted: true, Held: g.Count}, nil
		}
	}
	return opOutput{}, fmt.Errorf("the response names neither a grant nor a denial of %s", f.feature)
}

func shortError(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// operations turns the history into porcupine's form. An operation with
// an unknown outcome may take effect any time later; with sessionOrder,
// only before the same device's next call: a device that gave up on a
// request and sent another expects the old one not to land after it.
func (f *fleet) operations(sessionOrder bool) []porcupine.Operation {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := map[int]int64{} // device → call of its next operation
	ops := make([]porcupine.Operation, len(f.history))
	for i := len(f.history) - 1; i >= 0; i-- {
		h := f.history[i]
		ret := h.Return
		if h.Output.Unknown {
			ret = 1 << 62
			if n, ok := next[h.Input.Device]; ok && sessionOrder {
				ret = n - 1
			}
		}
		next[h.Input.Device] = h.Call
		ops[i] = porcupine.Operation{ClientId: h.Client, Input: h.Input, Call: h.Call, Output: h.Output, Return: ret}
	}
	return ops
}

// expectedHeld is, per device, the counts it may hold at the end: the
// outcome of its last known operation, and every count an unknown
// operation after it asked for.
func (f *fleet) expectedHeld() map[int]map[int64]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	byDevice := map[int][]record{}
	for _, h := range f.history {
		byDevice[h.Input.Device] = append(byDevice[h.Input.Device], h)
	}
	out := map[int]map[int64]bool{}
	for d := range f.devices {
		hs := byDevice[d]
		possible := map[int64]bool{}
		last := -1
		for i := len(hs) - 1; i >= 0; i-- {
			if !hs[i].Output.Unknown {
				last = i
				break
			}
		}
		if last < 0 {
			possible[0] = true
		} else {
			possible[hs[last].Output.Held] = true
		}
		// An unknown call after the last known one may have landed. One
		// before it must not land after it: that would undo an
		// acknowledged lease.
		for _, h := range hs[last+1:] {
			possible[h.Input.Count] = true
		}
		out[d] = possible
	}
	return out
}

func (f *fleet) unknownCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.history {
		if h.Output.Unknown {
			n++
		}
	}
	return n
}

// undone lists where a device's acknowledged outcome was changed before
// its next request: that request was denied and names another count held,
// and the device did nothing in between but an earlier request it had
// given up on.
func (f *fleet) undone() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := map[int]record{}
	abandoned := map[int]record{}
	var out []string
	for _, h := range f.history {
		d := h.Input.Device
		if h.Output.Unknown {
			abandoned[d] = h
			delete(last, d)
			continue
		}
		if a, ok := last[d]; ok && !h.Output.Granted && h.Output.Held != a.Output.Held {
			s := fmt.Sprintf("device %d: %s %d via %s acknowledged holding %d at %.3fs; its next request, %s %d via %s at %.3fs, was denied holding %d",
				d, a.Input.Kind, a.Input.Count, a.Node, a.Output.Held, float64(a.Return)/1e9,
				h.Input.Kind, h.Input.Count, h.Node, float64(h.Call)/1e9, h.Output.Held)
			if u, ok := abandoned[d]; ok {
				s += fmt.Sprintf(" (the device had given up on %s %d via %s at %.3fs: %s)", u.Input.Kind, u.Input.Count, u.Node, float64(u.Call)/1e9, u.Output.Error)
			}
			out = append(out, s)
		}
		last[d] = h
	}
	return out
}
