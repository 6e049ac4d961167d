package device

import (
	"context"
	"crypto"
	"errors"
	"io"
	"sync/atomic"
	"time"

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
	linger time.Duration
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

func newBatchSigner(key crypto.Signer, random io.Reader, max int, linger time.Duration, stop <-chan struct{}) *batchSigner {
	return &batchSigner{key: key, random: random, max: max, linger: linger, jobs: make(chan *signJob, 4096), stop: stop}
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
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var lastSigned time.Time
	for {
		batch, payloads = batch[:0], payloads[:0]
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		case <-s.stop:
			return
		}
		batch = s.drain(batch)
		// Busy: a signature was made a moment ago, so more payloads are
		// likely on their way. Give them a moment to share this one.
		if len(batch) == 1 && s.linger > 0 && time.Since(lastSigned) < s.linger {
			wait.Reset(s.linger)
		linger:
			for len(batch) < s.max {
				select {
				case j := <-s.jobs:
					batch = append(batch, j)
				case <-wait.C:
					break linger
				case <-s.stop:
					wait.Stop()
					return
				}
			}
			wait.Stop()
		}
		for _, j := range batch {
			payloads = append(payloads, j.payload)
		}
		signed, err := s.signAll(payloads)
		lastSigned = time.Now()
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

// drain adds the jobs already waiting to batch, up to the batch size.
func (s *batchSigner) drain(batch []*signJob) []*signJob {
	for len(batch) < s.max {
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}
