package core

import (
	"cmp"
	"slices"
	"time"
)

// SessionID names a client's stream of requests: a device connection, an
// administrator's login, a node's forwarder. Clients pick it at random.
type SessionID uint64

// RequestID identifies one request: its session and a sequence number that
// the client increases with each new request (a retry reuses it).
type RequestID struct {
	Session SessionID `json:"session"`
	Seq     uint64    `json:"seq"`
}

// sessionWindow is how many sequence numbers behind the highest one seen a
// session still tells apart; older ones are taken as duplicates.
const sessionWindow = 1024

// session remembers which of a client's recent sequence numbers were applied,
// like an anti-replay window: a bitmap of the last sessionWindow numbers.
type session struct {
	highest  uint64
	window   [sessionWindow / 64]uint64
	lastUsed time.Time
}

func (s *session) seen(seq uint64) bool {
	if seq > s.highest {
		return false
	}
	if s.highest-seq >= sessionWindow {
		return true
	}
	return s.window[(seq%sessionWindow)/64]&(1<<(seq%64)) != 0
}

func (s *session) mark(seq uint64) {
	if seq > s.highest {
		if seq-s.highest >= sessionWindow {
			clear(s.window[:])
		} else {
			for n := s.highest + 1; n < seq; n++ {
				s.window[(n%sessionWindow)/64] &^= 1 << (n % 64)
			}
		}
		s.highest = seq
	}
	s.window[(seq%sessionWindow)/64] |= 1 << (seq % 64)
}

// sweepSessions forgets sessions idle longer than the TTL; with full it also
// forgets the least recently used half when the table is at its limit.
func (s *State) sweepSessions(full bool) {
	for id, sess := range s.sessions {
		if s.now.Sub(sess.lastUsed) > s.cfg.SessionTTL {
			delete(s.sessions, id)
		}
	}
	if !full || len(s.sessions) < s.cfg.MaxSessions {
		return
	}
	ids := s.sessionOrder[:0]
	for id := range s.sessions {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b SessionID) int {
		if c := s.sessions[a].lastUsed.Compare(s.sessions[b].lastUsed); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, id := range ids[:len(ids)/2] {
		delete(s.sessions, id)
	}
	s.sessionOrder = ids[:0]
}
