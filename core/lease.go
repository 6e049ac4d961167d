package core

import (
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// lease is a device's hold on counts of a feature, asked for at a version.
// Its counts are drawn from one or more lines (parts), each charged to a
// pool; overdraft parts are counts granted past the lines' totals.
type lease struct {
	device  *device
	feature string
	version version.Version
	count   int64
	granted time.Time // when the lease was first granted
	expiry  time.Time
	seq     uint64 // grant order, for revoking the newest first
	parts   []leasePart
	inline  [1]leasePart // backing for the common one-part lease
	heapIdx int
}

type leasePart struct {
	line      *line
	pool      int
	count     int64
	overdraft bool
}

func (l *lease) overdraftCount() int64 {
	var n int64
	for _, p := range l.parts {
		if p.overdraft {
			n += p.count
		}
	}
	return n
}

// Lease is a lease as callers see it.
type Lease struct {
	Device    hostid.HostID   `json:"device"`
	Feature   string          `json:"feature"`
	Version   version.Version `json:"version"`
	Count     int64           `json:"count"`
	Overdraft int64           `json:"overdraft,omitempty"`
	Granted   time.Time       `json:"granted,omitzero"`
	Expiry    time.Time       `json:"expiry,omitzero"`
}

func (l *lease) info() Lease {
	return Lease{
		Device: l.device.info.ID, Feature: l.feature, Version: l.version, Count: l.count,
		Overdraft: l.overdraftCount(), Granted: l.granted, Expiry: l.expiry,
	}
}

// leaseHeap orders leases by expiry so that ticks free expired ones in
// O(log n) each.
type leaseHeap []*lease

func (h leaseHeap) less(i, j int) bool {
	if !h[i].expiry.Equal(h[j].expiry) {
		return h[i].expiry.Before(h[j].expiry)
	}
	return h[i].seq < h[j].seq
}

func (h leaseHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *leaseHeap) push(l *lease) {
	l.heapIdx = len(*h)
	*h = append(*h, l)
	h.up(l.heapIdx)
}

func (h *leaseHeap) remove(l *lease) {
	i := l.heapIdx
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	l.heapIdx = -1
}

// fix restores order after l's expiry changed.
func (h leaseHeap) fix(l *lease) {
	if !h.down(l.heapIdx) {
		h.up(l.heapIdx)
	}
}

func (h leaseHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h leaseHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
