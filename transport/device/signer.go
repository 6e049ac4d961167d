package device

import (
	"context"
	"crypto"
	"errors"
	"io"
	"sync/atomic"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// errShuttingDown is returned for work that arrives while the handler closes.
var errShuttingDown = errors.New("the server is shutting down")

// batchSigner signs payloads on one goroutine, taking every payload that
// waits when it becomes free as one batch (deviceproto.SignBatch).
type batchSigner struct {
	key    crypto.Signer
	random io.Reader
	max    int
	jobs   chan *signJob
	stop   <-chan struct{}

	signatures atomic.Uint64 // ECDSA signatures made
	payloads   atomic.Uint64 // payloads they covered
}

type signJob struct {
	payload []byte
	out     chan signResult
}

type signResult struct {
	signed deviceproto.Signed
	err    error
}

func newBatchSigner(key crypto.Signer, random io.Reader, max int, stop <-chan struct{}) *batchSigner {
	return &batchSigner{key: key, random: random, max: max, jobs: make(chan *signJob, 4096), stop: stop}
}

// sign returns payload signed, possibly together with others.
func (s *batchSigner) sign(ctx context.Context, payload []byte) (deviceproto.Signed, error) {
	j := &signJob{payload: payload, out: make(chan signResult, 1)}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return deviceproto.Signed{}, ctx.Err()
	case <-s.stop:
		return deviceproto.Signed{}, errShuttingDown
	}
	select {
	case r := <-j.out:
		return r.signed, r.err
	case <-s.stop:
		return deviceproto.Signed{}, errShuttingDown
	}
}

// signAll signs payloads on the calling goroutine in batches of at most max.
func (s *batchSigner) signAll(payloads [][]byte) ([]deviceproto.Signed, error) {
	out := make([]deviceproto.Signed, 0, len(payloads))
	for len(payloads) > 0 {
		n := min(len(payloads), s.max)
		signed, err := deviceproto.SignBatch(s.key, s.random, payloads[:n])
		if err != nil {
			return nil, err
		}
		s.signatures.Add(1)
		s.payloads.Add(uint64(n))
		out = append(out, signed...)
		payloads = payloads[n:]
	}
	return out, nil
}

func (s *batchSigner) run() {
	batch := make([]*signJob, 0, s.max)
	payloads := make([][]byte, 0, s.max)
	for {
		batch, payloads = batch[:0], payloads[:0]
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		case <-s.stop:
			return
		}
	drain:
		for len(batch) < s.max {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		for _, j := range batch {
			payloads = append(payloads, j.payload)
		}
		signed, err := s.signAll(payloads)
		for i, j := range batch {
			if err != nil {
				j.out <- signResult{err: err}
				continue
			}
			j.out <- signResult{signed: signed[i]}
		}
		clear(batch)
		clear(payloads)
	}
}
